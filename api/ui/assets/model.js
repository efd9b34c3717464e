// The console's copy of the flows: configurations (GET /flows), statuses (GET /flows/status,
// one cached document, paged client-side), the transitions seen since the page opened, and the
// live updates from /events. Views subscribe and get the changed ids once per animation frame.
import {get, enc} from './api.js';

const HISTORY_LIMIT = 200;       // transitions kept per flow
const BULK_REFETCH = 50;         // more config events than this in one batch: re-read everything

export const model = {
  configs: new Map(),   // flow_id -> configuration
  status: new Map(),    // flow_id -> status object
  order: [],            // flow ids in creation order
  history: new Map(),   // flow_id -> [{time, status, desired, error}], oldest first
  loaded: false,
  loadError: null,
  version: 0,           // bumped on every applied change (views compare it)
  hasNodes: false,      // a status carried `node`: the cluster column is shown
};

const listeners = new Set();
let changed = new Set();
let changedAll = false;
let frame = 0;

/** fn(changedIds: Set | null) once per frame after changes; null means "everything". */
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function notify(id) {
  model.version++;
  if (id === null) changedAll = true; else changed.add(id);
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush() {
  frame = 0;
  const ids = changedAll ? null : changed;
  changed = new Set();
  changedAll = false;
  for (const fn of listeners) {
    try { fn(ids); } catch (e) { console.error(e); }
  }
}

function record(id, st) {
  let list = model.history.get(id);
  if (!list) model.history.set(id, list = []);
  const last = list[list.length - 1];
  if (last && last.status === st.status && last.desired === st.desired &&
      last.error === (st.error ?? null) && last.time === st.since) return;
  list.push({time: st.since, status: st.status, desired: st.desired, error: st.error ?? null});
  if (list.length > HISTORY_LIMIT) list.splice(0, list.length - HISTORY_LIMIT);
}

/** Merges a status read from the server; state fields only when not older than what we hold. */
export function mergeStatus(st) {
  const id = st.flow_id;
  const cur = model.status.get(id);
  if (cur && cur.since && st.since && st.since < cur.since) {
    model.status.set(id, {...st, status: cur.status, desired: cur.desired, since: cur.since,
                          error: cur.error, operation: cur.operation});
  } else {
    model.status.set(id, st);
    record(id, st);
  }
  if ('node' in st) model.hasNodes = true;
  addToOrder(id);
  notify(id);
}

const known = new Set();   // the ids in model.order
function addToOrder(id) {
  if (known.has(id)) return;
  known.add(id);
  model.order.push(id);
}

let loading = null;
let buffered = null;   // events that arrived while a full read was in flight (or was failing)
let generation = 0;    // bumped by resetModel(): a read begun before a sign-out is not applied
let epoch = 0;         // bumped when a full read is applied: older per-flow reads are dropped
let retryTimer = 0;
let retryMs = 0;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30000;

/** Forgets everything (sign-out): the next person starts from an empty model. */
export function resetModel() {
  generation++;
  epoch++;
  Object.assign(model, {configs: new Map(), status: new Map(), order: [], history: new Map(),
                        loaded: false, loadError: null, hasNodes: false});
  model.version++;
  known.clear();
  loading = null;
  buffered = null;
  clearTimeout(retryTimer);
  retryTimer = 0;
  retryMs = 0;
  statusRefresh = null;
  statusEtag = null;
  pendingConfig.clear();
  clearTimeout(configTimer);
  configTimer = 0;
}

/**
 * Reads every configuration and status (GET /flows, GET /flows/status). The events that arrive
 * meanwhile are buffered and applied after it, in order. When it fails they stay buffered (with
 * the ones that follow) and the read is tried again (1 s doubling to 30 s), so that nothing is
 * lost and nothing is applied out of order.
 */
export function loadAll() {
  if (loading) return loading;
  const gen = generation;
  clearTimeout(retryTimer);
  retryTimer = 0;
  if (!buffered) buffered = [];
  // The config events received before this read are covered by it: no need to fetch them.
  pendingConfig.clear();
  clearTimeout(configTimer);
  configTimer = 0;
  const current = (async () => {
    let failed = null;
    try {
      const [flows, status] = await Promise.all([get('/flows'), get('/flows/status')]);
      if (gen !== generation) return;   // signed out meanwhile: not ours to apply
      const configs = new Map();
      const order = [];
      for (const c of flows.body) { configs.set(c.flow_id, c); order.push(c.flow_id); }
      const statusMap = new Map();
      let hasNodes = false;
      for (const [id, st] of Object.entries(status.body)) {
        statusMap.set(id, st);
        if ('node' in st) hasNodes = true;
        if (!configs.has(id)) order.push(id);   // created between the two reads
      }
      epoch++;
      model.configs = configs;
      model.status = statusMap;
      model.order = order;
      known.clear();
      for (const id of order) known.add(id);
      model.hasNodes = hasNodes;
      for (const [id, st] of statusMap) record(id, st);
      for (const id of model.history.keys()) if (!statusMap.has(id)) model.history.delete(id);
      model.loaded = true;
      model.loadError = null;
      retryMs = 0;
      loading = null;
      const pending = buffered;
      buffered = null;
      // Events that came while reading: those not older than the document are applied in
      // order (each flow's events are ordered, so the last one wins). A replayed `reset`
      // starts another read: the events after it wait for that one.
      for (const ev of pending) {
        if (buffered) buffered.push(ev); else applyEvent(ev, true);
      }
    } catch (e) {
      if (gen !== generation) return;
      failed = e;
      model.loadError = e;
    } finally {
      if (gen === generation) {
        if (loading === current) loading = null;
        if (failed && failed.status !== 401) {
          retryMs = Math.min(Math.max(retryMs * 2, RETRY_MIN_MS), RETRY_MAX_MS);
          retryTimer = setTimeout(() => { retryTimer = 0; loadAll(); }, retryMs);
        }
        notify(null);
      }
    }
  })();
  loading = current;
  return current;
}

let statusRefresh = null;
let statusEtag = null;
/** Re-reads GET /flows/status (for the metrics, which change without events); 304 is cheap. */
export async function refreshStatus() {
  if (statusRefresh || loading || buffered) return;
  const gen = generation;
  statusRefresh = (async () => {
    try {
      const r = await get('/flows/status', {headers: statusEtag ? {'If-None-Match': statusEtag} : {}});
      if (r.status === 304 || gen !== generation) return;
      statusEtag = r.etag;
      for (const st of Object.values(r.body)) {
        const cur = model.status.get(st.flow_id);
        if (!cur || JSON.stringify(cur) !== JSON.stringify(st)) mergeStatus(st);
      }
    } catch (e) {
      if (e.status !== 401) console.warn('status refresh:', e.message);
    } finally {
      if (gen === generation) statusRefresh = null;
    }
  })();
}

const pendingConfig = new Set();
let configTimer = 0;

function configChanged(id, op) {
  if (op === 'deleted') {
    pendingConfig.delete(id);
    model.configs.delete(id);
    model.status.delete(id);
    if (known.delete(id)) model.order = model.order.filter(x => x !== id);
    notify(null);
    return;
  }
  pendingConfig.add(id);
  if (!configTimer) configTimer = setTimeout(fetchConfigs, 100);
}

/** Fetches the flows named by config events (a few: one by one; many: everything again). */
async function fetchConfigs() {
  configTimer = 0;
  const ids = [...pendingConfig];
  pendingConfig.clear();
  if (ids.length > BULK_REFETCH) { await loadAll(); return; }
  const gen = generation;
  const since = epoch;
  await Promise.all(ids.map(async id => {
    try {
      const [c, s] = await Promise.all([get(`/flows/${enc(id)}`), get(`/flows/status/${enc(id)}`)]);
      // a full read applied meanwhile began after these events: it holds newer data
      if (since !== epoch || gen !== generation) return;
      addToOrder(id);
      model.configs.set(id, c.body);
      mergeStatus(s.body);
    } catch (e) {
      if (e.status === 404 && since === epoch && gen === generation) configChanged(id, 'deleted');
    }
  }));
  if (gen === generation) notify(null);
}

/** Applies one event of /events. */
export function applyEvent(ev, replay = false) {
  if (buffered && !replay) { buffered.push(ev); return; }
  const d = ev.data;
  if (ev.event === 'state' && d && d.flow_id) {
    const cur = model.status.get(d.flow_id);
    if (replay && cur && cur.since && d.since && d.since < cur.since) return;
    if (!cur) {
      // a flow we do not know yet (its config event is on its way): show what we have
      model.status.set(d.flow_id, {flow_id: d.flow_id, status: d.status, desired: d.desired,
                                   since: d.since, error: d.error ?? undefined, metrics: {}});
      addToOrder(d.flow_id);
      configChanged(d.flow_id, 'created');
    } else {
      const next = {...cur, status: d.status, desired: d.desired, since: d.since};
      if (d.error === null || d.error === undefined) delete next.error; else next.error = d.error;
      if (d.status === 'running' || d.status === 'stopped' || d.status === 'paused' ||
          d.status === 'failed' || d.status === 'completed') delete next.operation;
      model.status.set(d.flow_id, next);
    }
    record(d.flow_id, model.status.get(d.flow_id));
    notify(d.flow_id);
  } else if (ev.event === 'config' && d && d.flow_id) {
    // Replayed after a full read: a creation the document already holds needs no second read
    // (a flow is created once; a later change has its own `updated` event, a deletion before
    // its re-creation its own `deleted`, applied in order before this one).
    if (replay && d.op === 'created' && model.configs.has(d.flow_id)) return;
    configChanged(d.flow_id, d.op);
  } else if (ev.event === 'reset') {
    loadAll();
  }
}

/** Re-reads one flow's status (the detail view polls it). */
export async function pollStatus(id) {
  const gen = generation;
  const r = await get(`/flows/status/${enc(id)}`);
  if (gen === generation) mergeStatus(r.body);
  return r.body;
}

export function typeLabel(id) {
  const st = model.status.get(id);
  const c = model.configs.get(id);
  const type = st?.type ?? c?.type ?? 'noop';
  const base = type.split('@')[0];
  return st?.type_version ? `${base}@${st.type_version}` : type;
}
