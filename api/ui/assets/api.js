// The REST client: the bearer token (kept in sessionStorage), JSON requests, the API's JSON
// errors ({"error", "details": [{index, flow_id, path, message}]}) and how they are shown.
import {h} from './dom.js';

const TOKEN_KEY = 'sluice.token';

export const session = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  name: '', role: 'viewer', auth: 'required',
};

export function setToken(token) {
  session.token = token;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

const RANK = {viewer: 0, operator: 1, editor: 2, admin: 3};
/** Whether the signed-in role holds the rights of `role`. */
export const can = role => (RANK[session.role] ?? -1) >= RANK[role];

/** Called with the ApiError when a request made after sign-in answers 401 (token revoked). */
let onUnauthorized = null;
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export class ApiError extends Error {
  constructor(status, body, method, path) {
    const msg = (body && typeof body.error === 'string') ? body.error
      : status ? `${method} ${path} answered ${status}` : `${method} ${path}: ${body?.error}`;
    super(msg);
    this.status = status;           // 0: no answer (network)
    this.body = body || {};
    this.details = Array.isArray(this.body.details) ? this.body.details : [];
  }
}

export function authHeaders(extra = {}) {
  const hd = {...extra};
  if (session.token) hd.Authorization = `Bearer ${session.token}`;
  return hd;
}

/**
 * request('PUT', '/flows/a', {body, headers}) -> {status, body, headers, etag}.
 * Throws ApiError on a status >= 400 and on a network failure. 304 comes back as a result.
 */
export async function request(method, path, {body, headers = {}, signal, text = false} = {}) {
  const init = {method, headers: authHeaders(headers), signal, cache: 'no-store'};
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, {error: `the server could not be reached (${e.message})`}, method, path);
  }
  let data = null;
  if (resp.status !== 304) {
    let raw;
    try {
      raw = await resp.text();
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, {error: `the answer was cut off (${e.message})`}, method, path);
    }
    if (text && resp.ok) data = raw;
    else if (raw) {
      try { data = JSON.parse(raw); } catch { data = {error: raw.slice(0, 300)}; }
    }
  }
  if (!resp.ok && resp.status !== 304) {
    const err = new ApiError(resp.status, data, method, path);
    if (resp.status === 429) {
      const after = resp.headers.get('Retry-After');
      if (after) err.message += ` (retry after ${after} s)`;
    }
    if (resp.status === 401 && session.token && onUnauthorized && !path.startsWith('/whoami')) {
      onUnauthorized(err);
    }
    throw err;
  }
  return {status: resp.status, body: data, headers: resp.headers, etag: resp.headers.get('ETag')};
}

export const get = (path, opts) => request('GET', path, opts);

/** The target of a Link header's rel="next", or null. */
export function nextLink(headers) {
  const link = headers.get('Link');
  if (!link) return null;
  for (const part of link.split(',')) {
    const m = part.match(/<([^>]*)>\s*;\s*rel="?next"?/i);
    if (m) return m[1];
  }
  return null;
}

export const enc = encodeURIComponent;

/** One problem of an error's details as text: "a (#2) /config/x: message". */
export function problemText(p) {
  const where = [];
  if (p.flow_id) where.push(p.flow_id);
  if (p.index !== undefined && p.index !== null) where.push(`#${p.index}`);
  const path = p.path ? ` ${p.path}` : '';
  const head = where.length || path ? `${where.join(' ')}${path}: ` : '';
  return head + (p.message ?? JSON.stringify(p));
}

/**
 * An error box (role=alert): the status, the error message and each detail. For 403 it says
 * which role is needed.
 */
export function errorBox(err, {title, testid = 'error'} = {}) {
  const status = err.status ? `${err.status}: ` : '';
  const lines = [];
  if (err.status === 403 && err.body?.required_role) {
    lines.push(h('p', {text: `Your role (${session.role}) does not allow this; it needs ` +
                             `the role ${err.body.required_role}.`}));
  }
  if (err.status === 401) lines.push(h('p', {text: 'The server does not accept this token.'}));
  return h('div', {class: 'error-box', role: 'alert', 'data-testid': testid},
    title ? h('strong', {text: title}) : null,
    h('p', {class: 'error-message', 'data-testid': `${testid}-message`, text: status + err.message}),
    lines,
    err.details.length
      ? h('ul', {class: 'problems', 'data-testid': `${testid}-details`},
          err.details.map(p => h('li', {dataset: {path: p.path || ''}}, h('code', {text: p.path || ''}),
                                 p.path ? ' ' : '', problemText({...p, path: ''}))))
      : null);
}
