// The Sluice console: sign-in (GET /whoami), the header (role, live-stream indicator), the
// router (#/flows, #/flows/ID, #/edit/ID, #/new, #/plugins, #/audit) and the /events stream.
import {h, fill, $, expireFlash} from './dom.js';
import {session, setToken, can, request, setUnauthorizedHandler} from './api.js';
import {EventStream} from './events.js';
import {model, applyEvent, loadAll, resetModel} from './model.js';
import {flowsView, resetFlowsUi} from './flows.js';
import {detailView} from './detail.js';
import {editView} from './edit.js';
import {pluginsView} from './plugins.js';
import {auditView} from './audit.js';

let stream = null;
let streamFallback = 0;   // the timer of the first full read when the stream does not open
let unmount = null;
let signedIn = false;

// ---- sign-in

async function whoami(token) {
  const saved = session.token;
  session.token = token;
  try {
    return (await request('GET', '/whoami')).body;
  } finally {
    session.token = saved;
  }
}

function showSignIn(message = '') {
  signedIn = false;
  $('#top').hidden = true;
  fill($('#view'));
  $('#signin').hidden = false;
  const err = $('#signin-error');
  fill(err, message ? h('p', {text: message}) : null);
  document.title = 'Sign in — Sluice';
  $('#token-input').focus();
}

async function signIn(event) {
  event.preventDefault();
  const input = $('#token-input');
  const button = $('#signin-submit');
  const token = input.value.trim();
  button.disabled = true;
  fill($('#signin-error'), h('p', {class: 'muted', text: 'Checking the token…'}));
  try {
    const who = await whoami(token);
    if (!token && who.auth !== 'open') throw new Error('This server requires a token.');
    setToken(token);
    input.value = '';
    enter(who);
  } catch (e) {
    const status = e.status ? `${e.status}: ` : '';
    fill($('#signin-error'), h('p', {'data-testid': 'signin-error-message', text: `${status}${e.message}`}));
    input.focus();
    input.select();
  } finally {
    button.disabled = false;
  }
}

function signOut(message = '') {
  stream?.stop();
  stream = null;
  clearTimeout(streamFallback);
  unmount?.();
  unmount = null;
  setToken('');
  Object.assign(session, {name: '', role: 'viewer', auth: 'required'});
  // everything the model holds, history included; a read still in flight is not applied
  resetModel();
  resetFlowsUi();
  showSignIn(message);
}

// ---- signed in

function enter(who) {
  Object.assign(session, {name: who.token, role: who.role, auth: who.auth});
  signedIn = true;
  $('#signin').hidden = true;
  $('#top').hidden = false;
  fill($('#whoami'), h('span', {text: who.auth === 'open' ? 'open server (no token needed)' : who.token}), ' ',
    h('span', {class: `role role-${who.role}`, 'data-testid': 'role', text: who.role}));
  $('#nav-new').hidden = !can('editor');
  $('#nav-audit').hidden = !can('admin');
  startStream();
  route(false);
}

function startStream() {
  const conn = $('#conn-status');
  let opened = false;
  let loaded = false;
  const load = () => { loaded = true; loadAll(); };
  // Read everything once the stream is open (so no change falls between the two), or after
  // 3 s without it; read again when it opens after that.
  const fallback = streamFallback = setTimeout(() => { if (!loaded) load(); }, 3000);
  let pendingPaint = 0;
  stream = new EventStream({
    onEvent: ev => {
      applyEvent(ev);
      if (!pendingPaint) {
        pendingPaint = requestAnimationFrame(() => {
          pendingPaint = 0;
          conn.dataset.events = String(stream?.eventsSeen ?? 0);
          conn.dataset.lastEventId = stream?.lastId ?? '';
        });
      }
    },
    onOpen: resumed => {
      if (!opened) { opened = true; clearTimeout(fallback); load(); } else if (!resumed) load();
    },
    onState: (state, info) => {
      conn.dataset.state = state;
      const text = {connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…', stopped: 'offline'}[state];
      fill(conn, h('span', {class: 'dot', 'aria-hidden': 'true'}), ` ${text}`);
      conn.title = state === 'reconnecting' && info.retryInMs
        ? `The live stream broke (${info.error}); next try in ${Math.round(info.retryInMs / 1000)} s`
        : state === 'live' ? 'Receiving changes live from /events' : '';
    },
    onUnauthorized: msg => signOut(`Signed out: ${msg}`),
  });
  window.sluiceConsole = {stream, model};  // for the tests and the curious
  stream.start();
}

// ---- routing

const ROUTES = [
  [/^#?\/?$/, () => flowsView],
  [/^#\/flows\/?$/, () => flowsView],
  [/^#\/flows\/([^/]+)$/, () => detailView, 'id'],
  [/^#\/edit\/([^/]+)$/, () => editView, 'id'],
  [/^#\/new$/, () => editView],
  [/^#\/plugins$/, () => pluginsView],
  [/^#\/audit$/, () => auditView],
];

const TITLES = {flowsView: 'Flows', detailView: 'Flow', editView: 'Edit', pluginsView: 'Plugins', auditView: 'Audit'};

function route(byUser = true) {
  if (!signedIn) return;
  unmount?.();
  unmount = null;
  expireFlash();
  const hash = location.hash || '#/flows';
  const root = $('#view');
  let found = null;
  let problem = '';
  for (const [re, view, param] of ROUTES) {
    const m = re.exec(hash);
    if (!m) continue;
    try {
      found = {view: view(), params: param ? {[param]: decodeURIComponent(m[1])} : {}};
    } catch (e) {   // URIError: a malformed escape such as %E0
      problem = `The address ${hash} is malformed (${e.message}).`;
    }
    break;
  }
  for (const a of document.querySelectorAll('#top nav a')) {
    const target = a.getAttribute('href');
    const current = target === '#/flows' ? /^#?\/?$|^#\/flows/.test(hash) : hash === target;
    if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (!found) {
    document.title = 'Not found — Sluice';
    fill(root, h('section', {id: 'not-found', 'data-testid': 'not-found'}, h('h1', {text: 'Not found'}),
      h('p', {}, `${problem || `There is no page ${hash}.`} `, h('a', {href: '#/flows', text: 'Go to the flows'}))));
    return;
  }
  const name = found.view.name;
  document.title = `${TITLES[name] || 'Console'}${found.params.id ? ` ${found.params.id}` : ''} — Sluice`;
  unmount = found.view(root, found.params) || null;
  if (byUser) {
    const heading = root.querySelector('h1');
    if (heading && !root.contains(document.activeElement)) {
      heading.tabIndex = -1;
      heading.focus({preventScroll: true});
    }
  }
}

// ---- start

setUnauthorizedHandler(err => { if (signedIn) signOut(`Signed out: ${err.message}`); });
$('#signin-form').addEventListener('submit', signIn);
$('#sign-out').addEventListener('click', () => signOut('Signed out.'));
window.addEventListener('hashchange', () => route(true));

(async () => {
  if (!session.token) { showSignIn(); return; }
  try {
    enter(await whoami(session.token));
  } catch (e) {
    setToken('');
    showSignIn(e.status === 401 ? `The saved token is no longer accepted: ${e.message}` : e.message);
  }
})();
