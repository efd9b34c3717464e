// The flows table: filter by state and type, search by id, sort by any column, page through
// 10,000 flows (only the visible page is in the DOM), select flows and send them commands.
// Rows update in place from the model (live from /events), at most once per animation frame.
import {h, fill, stateBadge, timeEl, fmtNumber, plural, loading} from './dom.js';
import {can, errorBox} from './api.js';
import {model, subscribe, loadAll, refreshStatus, typeLabel} from './model.js';
import {commandButtons} from './commands.js';

const STATES = ['stopped', 'starting', 'running', 'pausing', 'paused', 'resuming', 'stopping',
                'failed', 'completed'];

// Kept while the page is open, so that coming back to the table keeps its filters and page.
const ui = {search: '', state: '', type: '', sortKey: '', sortDir: 1, page: 0, pageSize: 100,
            selected: new Set()};

/** On sign-out: the next person starts with no selection and no filters. */
export function resetFlowsUi() {
  Object.assign(ui, {search: '', state: '', type: '', sortKey: '', sortDir: 1, page: 0});
  ui.selected.clear();
}

const COLUMNS = [
  {key: 'id', label: 'ID', value: id => id},
  {key: 'name', label: 'Name', value: id => String(model.configs.get(id)?.name ?? '')},
  {key: 'type', label: 'Type', value: id => typeLabel(id)},
  {key: 'status', label: 'State', value: id => model.status.get(id)?.status ?? ''},
  {key: 'desired', label: 'Desired', value: id => model.status.get(id)?.desired ?? ''},
  {key: 'since', label: 'Since', value: id => model.status.get(id)?.since ?? ''},
  {key: 'error', label: 'Last error', value: id => model.status.get(id)?.error ?? ''},
  {key: 'node', label: 'Node', value: id => model.status.get(id)?.node ?? '', cluster: true},
  {key: 'metrics', label: 'Metrics', value: id => metricsText(model.status.get(id)?.metrics)},
];

function metricsText(m) {
  if (!m) return '';
  return Object.entries(m).slice(0, 3).map(([k, v]) => `${k} ${fmtNumber(v)}`).join(' · ');
}

const typeBase = id => (model.status.get(id)?.type ?? model.configs.get(id)?.type ?? 'noop').split('@')[0];

/** The ids that pass the filters, sorted. */
function visibleIds() {
  let ids = model.order;
  const q = ui.search.trim().toLowerCase();
  if (q) ids = ids.filter(id => id.toLowerCase().includes(q));
  if (ui.state) ids = ids.filter(id => model.status.get(id)?.status === ui.state);
  if (ui.type) ids = ids.filter(id => typeBase(id) === ui.type);
  if (ui.sortKey) {
    const col = COLUMNS.find(c => c.key === ui.sortKey);
    const keyed = ids.map((id, i) => [col.value(id), i, id]);
    const dir = ui.sortDir;
    keyed.sort((a, b) => (a[0] < b[0] ? -dir : a[0] > b[0] ? dir : a[1] - b[1]));
    ids = keyed.map(k => k[2]);
  }
  return ids;
}

export function flowsView(root) {
  const operator = can('operator');
  const search = h('input', {type: 'search', id: 'flow-search', 'data-testid': 'flow-search',
                             value: ui.search, placeholder: 'id contains…', autocomplete: 'off'});
  const stateSel = h('select', {id: 'filter-state', 'data-testid': 'filter-state'},
    h('option', {value: '', text: 'any state'}), STATES.map(s => h('option', {value: s, text: s})));
  stateSel.value = ui.state;
  const typeSel = h('select', {id: 'filter-type', 'data-testid': 'filter-type'});
  const sizeSel = h('select', {id: 'page-size'},
    [25, 50, 100, 200].map(n => h('option', {value: String(n), text: String(n)})));
  sizeSel.value = String(ui.pageSize);
  const count = h('span', {id: 'flows-count', 'data-testid': 'flows-count', class: 'count'});
  const result = h('div', {id: 'command-result', 'aria-live': 'polite', class: 'result-area'});
  const selInfo = h('span', {id: 'selection-count', 'data-testid': 'selection-count'});
  const pageInfo = h('span', {id: 'page-info', 'data-testid': 'page-info', 'aria-live': 'polite'});
  const selectPage = operator ? h('input', {type: 'checkbox', id: 'select-page', 'data-testid': 'select-page',
                                            'aria-label': 'Select all flows on this page'}) : null;
  const tbody = h('tbody', {});
  const cols = () => COLUMNS.filter(c => !c.cluster || model.hasNodes);
  const headRow = h('tr', {});
  const pagerBtn = (id, label, text) => h('button', {type: 'button', id, 'data-testid': id,
                                                     'aria-label': label, text});
  const first = pagerBtn('page-first', 'First page', '« First');
  const prev = pagerBtn('page-prev', 'Previous page', '‹ Previous');
  const next = pagerBtn('page-next', 'Next page', 'Next ›');
  const last = pagerBtn('page-last', 'Last page', 'Last »');

  const body = h('div', {id: 'flows-body'});
  const selBar = operator ? h('div', {class: 'toolbar selection-bar'}, selInfo,
    h('button', {type: 'button', id: 'clear-selection', text: 'Clear selection',
                 onclick: () => { ui.selected.clear(); render(null); }}),
    commandButtons(() => [...ui.selected], result, {idPrefix: 'cmd'})) : null;
  fill(root, h('section', {id: 'flows-view', 'aria-labelledby': 'flows-title'},
    h('div', {class: 'view-head'},
      h('h1', {id: 'flows-title'}, 'Flows '), count,
      can('editor') ? h('a', {href: '#/new', class: 'button primary', id: 'new-flow', 'data-testid': 'new-flow',
                              text: 'New flow'}) : null),
    h('div', {class: 'toolbar', role: 'search'},
      h('label', {for: 'flow-search'}, 'Search by id'), search,
      h('label', {for: 'filter-state'}, 'State'), stateSel,
      h('label', {for: 'filter-type'}, 'Type'), typeSel,
      h('label', {for: 'page-size'}, 'Rows per page'), sizeSel,
      h('button', {type: 'button', id: 'refresh', onclick: () => loadAll(), text: 'Refresh'})),
    selBar,
    result, body));

  const table = h('table', {id: 'flows-table', 'data-testid': 'flows-table', class: 'flows'},
    h('caption', {class: 'sr-only', text: 'Flows; the column buttons sort the table'}),
    h('thead', {}, headRow), tbody);
  const pager = h('nav', {class: 'pager', 'aria-label': 'Pages of flows'}, first, prev, pageInfo, next, last);

  let pageIds = [];
  let shown = [];
  let headKey = '';
  let rowKey = '';   // the columns the rows in the DOM were built with

  function renderHead() {
    const key = `${cols().length}|${ui.sortKey}|${ui.sortDir}`;
    if (key === headKey) return;
    headKey = key;
    fill(headRow,
      operator ? h('th', {scope: 'col', class: 'check'}, selectPage) : null,
      cols().map(c => {
        const sorted = ui.sortKey === c.key;
        const dir = sorted ? (ui.sortDir > 0 ? 'ascending' : 'descending') : null;
        return h('th', {scope: 'col', 'aria-sort': dir || 'none', class: `col-${c.key}`},
          h('button', {type: 'button', class: 'sort', 'data-sort': c.key, 'data-testid': `sort-${c.key}`,
                       onclick: () => sortBy(c.key)},
            c.label, h('span', {class: 'sort-mark', 'aria-hidden': 'true',
                                text: sorted ? (ui.sortDir > 0 ? ' ▲' : ' ▼') : ''})));
      }));
  }

  function sortBy(key) {
    if (ui.sortKey === key) {
      if (ui.sortDir > 0) ui.sortDir = -1; else { ui.sortKey = ''; ui.sortDir = 1; }
    } else { ui.sortKey = key; ui.sortDir = 1; }
    ui.page = 0;
    render(null);
    headRow.querySelector(`[data-sort="${key}"]`)?.focus();
  }

  function rowFor(id) {
    const tr = h('tr', {dataset: {flowId: id}});
    const cells = {};
    if (operator) {
      const box = h('input', {type: 'checkbox', 'data-testid': 'select-row', 'aria-label': `Select flow ${id}`,
                              onchange: e => {
                                if (e.target.checked) ui.selected.add(id); else ui.selected.delete(id);
                                renderSelection();
                              }});
      cells.check = box;
      tr.append(h('td', {class: 'check'}, box));
    }
    for (const c of cols()) {
      const td = h('td', {class: `col-${c.key}`, 'data-testid': c.key});
      cells[c.key] = td;
      tr.append(td);
    }
    cells.id.append(h('a', {href: `#/flows/${encodeURIComponent(id)}`, text: id}));
    tr._cells = cells;
    fillRow(tr, id);
    return tr;
  }

  function fillRow(tr, id) {
    const st = model.status.get(id) || {};
    const c = tr._cells;
    if (c.check) c.check.checked = ui.selected.has(id);
    fill(c.name, String(model.configs.get(id)?.name ?? ''));
    fill(c.type, typeLabel(id));
    fill(c.status, stateBadge(st.status), st.operation ? h('span', {class: 'op', text: ` ${st.operation}`}) : null);
    fill(c.desired, st.desired ? stateBadge(st.desired, 'desired') : '');
    fill(c.since, timeEl(st.since));
    fill(c.error, st.error ? h('span', {class: 'error-text', title: st.error, text: st.error}) : '');
    if (c.node) fill(c.node, st.node ?? (model.hasNodes ? 'unassigned' : ''));
    fill(c.metrics, metricsText(st.metrics));
    tr.classList.toggle('mismatch', !!st.desired && st.desired !== st.status &&
                        !(st.desired === 'stopped' && (st.status === 'completed' || st.status === 'failed')));
  }

  function renderSelection() {
    if (!operator) return;
    selInfo.textContent = ui.selected.size ? `${plural(ui.selected.size, 'flow')} selected` : 'No flows selected';
    for (const b of selBar.querySelectorAll('button')) b.disabled = ui.selected.size === 0;
    const on = pageIds.filter(id => ui.selected.has(id)).length;
    selectPage.checked = pageIds.length > 0 && on === pageIds.length;
    selectPage.indeterminate = on > 0 && on < pageIds.length;
    for (const tr of tbody.rows) if (tr._cells) tr._cells.check.checked = ui.selected.has(tr.dataset.flowId);
  }

  function renderTypes() {
    const types = new Set();
    for (const id of model.order) types.add(typeBase(id));
    if (ui.type) types.add(ui.type);
    const want = ['', ...[...types].sort()];
    const have = [...typeSel.options].map(o => o.value);
    if (want.join('\n') === have.join('\n')) return;
    fill(typeSel, want.map(t => h('option', {value: t, text: t || 'any type'})));
    typeSel.value = ui.type;
  }

  /** changedIds: a Set of ids whose data changed, or null for "everything". */
  function render(changedIds) {
    if (!model.loaded) {
      fill(body, model.loadError
        ? [errorBox(model.loadError, {title: 'The flows could not be read'}),
           h('button', {type: 'button', onclick: () => loadAll(), text: 'Try again'})]
        : loading('Loading flows…'));
      return;
    }
    if (!body.contains(table)) fill(body, table, pager);
    renderHead();   // cheap unless the columns or the sort changed
    if (changedIds === null) renderTypes();
    // The Node column appears when a status first carries `node`, possibly with the same ids on
    // the page: the rows are then built again (with the new cells) and put in place.
    const colKey = cols().map(c => c.key).join(' ');
    const colsChanged = colKey !== rowKey;
    rowKey = colKey;
    for (const id of ui.selected) if (!model.status.has(id) && !model.configs.has(id)) ui.selected.delete(id);
    shown = visibleIds();
    const total = model.order.length;
    count.textContent = shown.length === total ? plural(total, 'flow')
      : `${shown.length.toLocaleString('en-US')} of ${plural(total, 'flow')}`;
    count.dataset.total = String(total);
    count.dataset.shown = String(shown.length);
    const pages = Math.max(1, Math.ceil(shown.length / ui.pageSize));
    ui.page = Math.min(ui.page, pages - 1);
    const from = ui.page * ui.pageSize;
    const ids = shown.slice(from, from + ui.pageSize);
    const sameRows = ids.length === pageIds.length && ids.every((id, i) => id === pageIds[i]);
    if (sameRows && changedIds !== null && !colsChanged) {
      for (const tr of tbody.rows) if (changedIds.has(tr.dataset.flowId)) fillRow(tr, tr.dataset.flowId);
    } else {
      const existing = colsChanged ? new Map()
        : new Map([...tbody.rows].filter(tr => tr._cells).map(tr => [tr.dataset.flowId, tr]));
      let rebuilt = false;
      const rows = ids.map(id => {
        const tr = existing.get(id);
        if (tr) {
          fillRow(tr, id);
          return tr;
        }
        rebuilt = true;
        return rowFor(id);
      });
      if (!sameRows || rebuilt) tbody.replaceChildren(...rows);
      if (!ids.length) {
        tbody.replaceChildren(h('tr', {}, h('td', {colspan: String(cols().length + (operator ? 1 : 0)),
          class: 'empty', text: total ? 'No flow matches the filters.' : 'No flows yet.'})));
      }
    }
    pageIds = ids;
    pageInfo.textContent = shown.length
      ? `${(from + 1).toLocaleString('en-US')}–${(from + ids.length).toLocaleString('en-US')} of ` +
        `${shown.length.toLocaleString('en-US')} (page ${ui.page + 1} of ${pages})`
      : 'no flows';
    pageInfo.dataset.page = String(ui.page + 1);
    pageInfo.dataset.pages = String(pages);
    first.disabled = prev.disabled = ui.page === 0;
    next.disabled = last.disabled = ui.page >= pages - 1;
    renderSelection();
  }

  const goPage = p => {
    ui.page = p;
    render(null);
    // the pager sits below the table: show the new page from its top
    if (table.getBoundingClientRect().top < 0) table.scrollIntoView({block: 'start'});
  };
  first.addEventListener('click', () => goPage(0));
  prev.addEventListener('click', () => goPage(Math.max(0, ui.page - 1)));
  next.addEventListener('click', () => goPage(ui.page + 1));
  last.addEventListener('click', () => goPage(Math.ceil(shown.length / ui.pageSize) - 1));
  let searchTimer = 0;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { ui.search = search.value; ui.page = 0; render(null); }, 150);
  });
  stateSel.addEventListener('change', () => { ui.state = stateSel.value; ui.page = 0; render(null); });
  typeSel.addEventListener('change', () => { ui.type = typeSel.value; ui.page = 0; render(null); });
  sizeSel.addEventListener('change', () => { ui.pageSize = Number(sizeSel.value); ui.page = 0; render(null); });
  selectPage?.addEventListener('change', () => {
    for (const id of pageIds) if (selectPage.checked) ui.selected.add(id); else ui.selected.delete(id);
    renderSelection();
  });

  // keyboard: "/" searches, "[" and "]" turn pages (when no field has the focus)
  const onKey = e => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.target.closest('input, select, textarea, dialog')) return;
    if (e.key === '/') { e.preventDefault(); search.focus(); } else if (e.key === '[' && !prev.disabled) prev.click();
    else if (e.key === ']' && !next.disabled) next.click();
  };
  document.addEventListener('keydown', onKey);

  // Changes from /events are drawn at most five times a second: a storm of transitions (a
  // command on thousands of flows) then costs a few renders of one page, and a table sorted or
  // filtered by state does not reshuffle at every frame.
  let pendingIds = new Set();
  let pendingAll = false;
  let drawTimer = 0;
  let lastDraw = 0;
  const draw = () => {
    drawTimer = 0;
    lastDraw = performance.now();
    const ids = pendingAll ? null : pendingIds;
    pendingIds = new Set();
    pendingAll = false;
    render(ids);
  };
  const unsubscribe = subscribe(ids => {
    if (ids === null) pendingAll = true; else for (const id of ids) pendingIds.add(id);
    const wait = lastDraw + 200 - performance.now();
    if (wait <= 0) draw(); else if (!drawTimer) drawTimer = setTimeout(draw, wait);
  });
  render(null);
  // Metrics change without events: re-read the status document now and then (the server caches
  // it; the If-None-Match makes an unchanged one cost a 304).
  let timer = 0;
  const tick = () => {
    if (!document.hidden && model.loaded) refreshStatus();
    timer = setTimeout(tick, Math.max(5000, model.order.length));
  };
  timer = setTimeout(tick, 5000);
  return () => {
    unsubscribe();
    clearTimeout(timer);
    clearTimeout(searchTimer);
    clearTimeout(drawTimer);
    document.removeEventListener('keydown', onKey);
  };
}
