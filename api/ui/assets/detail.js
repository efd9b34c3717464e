// One flow (#/flows/ID): its status, commands, metrics as live sparklines (GET
// /flows/status/ID every 2 s while open), the transitions seen since the page opened, its
// configuration and its log.
import {h, fill, stateBadge, timeEl, fmtNumber, loading} from './dom.js';
import {get, enc, can, errorBox} from './api.js';
import {model, subscribe, pollStatus} from './model.js';
import {commandButtons} from './commands.js';
import {sparkline, rate} from './charts.js';

const POLL_MS = 2000;
const SAMPLES = 90; // three minutes

export function detailView(root, {id}) {
  let alive = true;
  let timer = 0;
  const series = new Map(); // metric name -> [{t, v}]
  const title = h('h1', {id: 'detail-title', text: `Flow ${id}`});
  const head = h('div', {class: 'detail-head'});
  const statusEl = h('dl', {class: 'kv', id: 'detail-status', 'data-testid': 'detail-status'});
  const charts = h('div', {class: 'charts', id: 'detail-charts', 'data-testid': 'detail-charts'});
  const historyBody = h('tbody', {});
  const configEl = h('pre', {class: 'mono', id: 'detail-config', 'data-testid': 'detail-config'});
  const logsEl = h('div', {id: 'detail-logs'});
  const result = h('div', {id: 'detail-command-result', 'aria-live': 'polite', class: 'result-area'});
  const gone = h('div', {'aria-live': 'assertive'});

  fill(root, h('section', {id: 'detail-view', 'aria-labelledby': 'detail-title'},
    h('div', {class: 'view-head'}, title, h('a', {href: '#/flows', text: 'Back to the flows'}),
      can('editor') ? h('a', {href: `#/edit/${enc(id)}`, class: 'button', id: 'edit-flow', 'data-testid': 'edit-flow',
                              text: 'Edit'}) : null),
    gone, head,
    commandButtons(() => [id], result, {idPrefix: 'detail-cmd'}), result,
    h('div', {class: 'detail-grid'},
      h('section', {'aria-labelledby': 'status-title'}, h('h2', {id: 'status-title', text: 'Status'}), statusEl),
      h('section', {'aria-labelledby': 'metrics-title'},
        h('h2', {id: 'metrics-title', text: 'Metrics (every 2 s while this page is open)'}), charts)),
    h('section', {'aria-labelledby': 'history-title'},
      h('h2', {id: 'history-title', text: 'State history (since this page was loaded)'}),
      h('table', {class: 'compact', id: 'detail-history', 'data-testid': 'detail-history'},
        h('thead', {}, h('tr', {}, ['Since', 'State', 'Desired', 'Error'].map(c => h('th', {scope: 'col', text: c})))),
        historyBody)),
    h('div', {class: 'detail-grid'},
      h('section', {'aria-labelledby': 'config-title'}, h('h2', {id: 'config-title', text: 'Configuration'}), configEl),
      h('section', {'aria-labelledby': 'logs-title'},
        h('div', {class: 'view-head'}, h('h2', {id: 'logs-title', text: 'Log (last 100 lines)'}),
          h('button', {type: 'button', id: 'logs-refresh', text: 'Refresh log', onclick: () => loadLogs()})),
        logsEl))));

  function renderStatus() {
    const st = model.status.get(id);
    if (!st) return;
    const name = model.configs.get(id)?.name;
    title.textContent = name ? `Flow ${id} — ${name}` : `Flow ${id}`;
    fill(head, h('span', {'data-testid': 'detail-state'}, 'State ', stateBadge(st.status)),
      h('span', {}, ' desired ', stateBadge(st.desired, 'desired')),
      st.operation ? h('span', {class: 'op', text: ` ${st.operation}`}) : null);
    const rows = [
      ['Type', `${st.type}${st.type_version ? ` (runs ${st.type_version})` : ''}`],
      ['Since', timeEl(st.since)],
      ['Last error', st.error ? h('span', {class: 'error-text', text: st.error}) : '—'],
      st.operation ? ['Operation', [st.operation, st.deadline ? [', deadline ', timeEl(st.deadline)] : null]] : null,
      ['Runs', fmtNumber(st.runs ?? 0)],
      ['Last run', st.last_run ? [st.last_run.result ?? 'running', ' — started ', timeEl(st.last_run.started),
        st.last_run.ended ? [', ended ', timeEl(st.last_run.ended)] : null,
        st.last_run.error ? h('span', {class: 'error-text', text: ` — ${st.last_run.error}`}) : null] : 'never ran'],
      'next_run_at' in st ? ['Next run', st.next_run_at ? timeEl(st.next_run_at) : 'not scheduled'] : null,
      st.waiting_for ? ['Waiting for', st.waiting_for.length
        ? st.waiting_for.map(w => `${w.flow_id} (${w.on}; last ${w.last_result ?? 'none'})`).join(', ') : 'nothing'] : null,
      'restart_count' in st ? ['Restarts', [String(st.restart_count), st.next_restart_at ? [', next at ', timeEl(st.next_restart_at)] : null]] : null,
      'node' in st ? ['Owner node', st.node ?? 'unassigned'] : null,
    ].filter(Boolean);
    fill(statusEl, rows.map(([k, v]) => [h('dt', {text: k}), h('dd', {}, v)]));
    const hist = (model.history.get(id) || []).slice().reverse();
    fill(historyBody, hist.map((e, i) => h('tr', {class: i === 0 ? 'current' : ''},
      h('td', {}, timeEl(e.time), i === 0 ? h('span', {class: 'muted', text: ' (current)'}) : null),
      h('td', {}, stateBadge(e.status)), h('td', {}, stateBadge(e.desired, 'desired')),
      h('td', {class: 'error-text', text: e.error || ''}))));
    const config = model.configs.get(id);
    if (config) configEl.textContent = JSON.stringify(config, null, 2);
  }

  function renderCharts() {
    if (!series.size) {
      fill(charts, h('p', {class: 'muted', text: 'This flow reports no metrics.'}));
      return;
    }
    fill(charts, [...series].map(([name, pts]) => {
      const r = rate(pts);
      const last = pts[pts.length - 1]?.v;
      return h('figure', {class: 'chart', dataset: {metric: name}},
        h('figcaption', {}, h('strong', {text: name}), ` ${fmtNumber(last)}`,
          r !== null ? h('span', {class: 'muted', text: ` (${fmtNumber(Math.round(r * 10) / 10)}/s)`}) : null),
        sparkline(name, pts));
    }));
  }

  async function poll() {
    try {
      const st = await pollStatus(id);
      const now = Date.now();
      for (const [k, v] of Object.entries(st.metrics || {})) {
        if (!series.has(k)) series.set(k, []);
        const pts = series.get(k);
        pts.push({t: now, v});
        if (pts.length > SAMPLES) pts.shift();
      }
      if (alive) { fill(gone); renderCharts(); }
    } catch (e) {
      if (!alive) return;
      if (e.status === 404) {
        fill(gone, h('p', {class: 'error-box', role: 'alert', text: `The flow ${id} does not exist (any more).`}));
        return;
      }
      fill(gone, errorBox(e, {title: 'The status could not be read; trying again'}));
    }
    if (alive) timer = setTimeout(poll, POLL_MS);
  }

  async function loadLogs() {
    fill(logsEl, loading('Loading the log…'));
    try {
      const r = await get(`/flows/${enc(id)}/logs?tail=100`);
      const lines = r.body.lines || [];
      fill(logsEl, lines.length
        ? h('pre', {class: 'mono log', 'data-testid': 'detail-log'},
          lines.map(l => h('span', {class: l.stream === 'stderr' ? 'stderr' : ''}, `${l.time} ${l.stream} ${l.text}\n`)))
        : h('p', {class: 'muted', text: 'The log is empty (only flows whose work writes output, such as exec, have one).'}));
    } catch (e) {
      fill(logsEl, errorBox(e, {title: 'The log could not be read'}));
    }
  }

  async function loadConfig() {
    try {
      const r = await get(`/flows/${enc(id)}`);
      model.configs.set(id, r.body);
      configEl.textContent = JSON.stringify(r.body, null, 2);
    } catch (e) {
      if (e.status !== 404) fill(configEl, errorBox(e, {title: 'The configuration could not be read'}));
    }
  }

  const unsubscribe = subscribe(ids => { if (ids === null || ids.has(id)) renderStatus(); });
  renderStatus();
  renderCharts();
  loadConfig();
  loadLogs();
  poll();
  return () => { alive = false; clearTimeout(timer); unsubscribe(); };
}
