// Small DOM helpers: every element is built with h(), never from HTML strings, so text from the
// server is always text (no injection) and the Content-Security-Policy needs no exceptions.

/**
 * h('button', {class: 'x', onclick: fn, dataset: {flowId: 'a'}, 'aria-label': 'y'}, 'text', child)
 * Keys: class, text, dataset, on<event> (listeners), value/checked/disabled/hidden/selected
 * (properties), anything else an attribute (false/null/undefined leave it out).
 */
export function h(tag, props, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'hidden' ||
             k === 'selected' || k === 'indeterminate') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces the children of el. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

const pad = n => String(n).padStart(2, '0');

/** An ISO time as local "YYYY-MM-DD HH:MM:SS" ("HH:MM:SS" when it is today). */
export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return t;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${t}`;
}

/** A <time> element showing fmtTime, with the exact time as its title. */
export function timeEl(iso) {
  if (!iso) return h('span', {class: 'muted', text: '—'});
  return h('time', {datetime: iso, title: iso, text: fmtTime(iso)});
}

export function fmtNumber(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return v.toLocaleString('en-US', {maximumFractionDigits: 3});
}

/** A coloured badge for an actual or desired state (colour and text: never colour alone). */
export function stateBadge(state, extraClass = '') {
  const s = state || 'unknown';
  return h('span', {class: `state state-${s} ${extraClass}`.trim(), text: s});
}

export function plural(n, one, many = one + 's') {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

/** A view's "loading" line. */
export const loading = (what = 'Loading…') => h('p', {class: 'muted', role: 'status', text: what});

// A message that survives the next change of view (e.g. "Saved flow a." shown on the flow's page).
let flashKeep = false;
export function flash(text, kind = 'ok') {
  const el = document.getElementById('flash');
  if (!el) return;
  fill(el, h('p', {class: `result ${kind}`, 'data-testid': 'flash', text}));
  flashKeep = true;
}
/** Called by the router on each change of view. */
export function expireFlash() {
  if (flashKeep) { flashKeep = false; return; }
  const el = document.getElementById('flash');
  if (el) el.replaceChildren();
}
