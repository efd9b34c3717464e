// The audit log (#/audit, admins): GET /audit?after=SEQ&limit=N, paged with its Link header.
import {h, fill, timeEl, loading} from './dom.js';
import {get, can, errorBox, nextLink} from './api.js';

const LIMIT = 100;

export function auditView(root) {
  if (!can('admin')) {
    fill(root, h('section', {id: 'audit-view'}, h('h1', {text: 'Audit log'}),
      h('p', {class: 'error-box', role: 'alert', 'data-testid': 'role-refused',
              text: 'Only an admin can read the audit log.'})));
    return null;
  }
  let alive = true;
  const stack = [];   // the `after` of the pages before this one
  let current = 0;
  let next = null;
  const body = h('div', {}, loading('Loading the audit log…'));
  const info = h('span', {id: 'audit-page-info', 'data-testid': 'audit-page-info', 'aria-live': 'polite'});
  const prevBtn = h('button', {type: 'button', id: 'audit-prev', text: '‹ Previous page',
                               onclick: () => load(stack.pop() ?? 0)});
  const nextBtn = h('button', {type: 'button', id: 'audit-next', 'data-testid': 'audit-next', text: 'Next page ›',
                               onclick: () => { stack.push(current); load(next); }});
  const firstBtn = h('button', {type: 'button', id: 'audit-first', text: '« First page',
                                onclick: () => { stack.length = 0; load(0); }});
  const fromIn = h('input', {type: 'number', id: 'audit-from', min: '1', step: '1', inputmode: 'numeric'});
  const jump = h('form', {class: 'inline', onsubmit: e => {
    e.preventDefault();
    const n = Math.max(1, Math.floor(Number(fromIn.value) || 1));
    stack.length = 0;
    if (n > 1) stack.push(0);
    load(n - 1);
  }}, h('label', {for: 'audit-from', text: 'From entry'}), ' ', fromIn, ' ', h('button', {type: 'submit', text: 'Go'}));
  fill(root, h('section', {id: 'audit-view', 'aria-labelledby': 'audit-title'},
    h('div', {class: 'view-head'}, h('h1', {id: 'audit-title', text: 'Audit log'}),
      h('span', {class: 'muted', text: 'Every change and every refused request, oldest first.'})),
    h('nav', {class: 'pager', 'aria-label': 'Pages of the audit log'}, firstBtn, prevBtn, info, nextBtn, jump),
    body));

  async function load(after) {
    current = after;
    fill(body, loading('Loading the audit log…'));
    let r;
    try {
      r = await get(`/audit?after=${after}&limit=${LIMIT}`);
    } catch (e) {
      if (alive) fill(body, errorBox(e, {title: 'The audit log could not be read'}));
      return;
    }
    if (!alive) return;
    const link = nextLink(r.headers);
    const m = link && /[?&]after=(\d+)/.exec(link);
    next = m ? Number(m[1]) : null;
    const rows = r.body;
    info.textContent = rows.length ? `entries ${rows[0].seq}–${rows[rows.length - 1].seq}` : 'no entries';
    prevBtn.disabled = firstBtn.disabled = stack.length === 0 && after === 0;
    nextBtn.disabled = next === null;
    fill(body, rows.length ? h('table', {class: 'compact audit', id: 'audit-table', 'data-testid': 'audit-table'},
      h('thead', {}, h('tr', {}, ['Seq', 'Time', 'Token', 'Role', 'Remote', 'Request', 'Flows', 'Status', 'Error / detail']
        .map(c => h('th', {scope: 'col', text: c})))),
      h('tbody', {}, rows.map(e => h('tr', {dataset: {seq: e.seq}, class: e.status >= 400 ? 'refused' : ''},
        h('td', {class: 'num', text: String(e.seq)}), h('td', {}, timeEl(e.time)),
        h('td', {text: e.token}), h('td', {text: e.role}), h('td', {text: e.remote}),
        h('td', {}, h('code', {text: `${e.method} ${e.path}`})),
        h('td', {title: (e.flow_ids || []).join(', '),
                 text: (e.flow_ids || []).length > 3 ? `${e.flow_ids.slice(0, 3).join(', ')} +${e.flow_ids.length - 3}`
                   : (e.flow_ids || []).join(', ')}),
        h('td', {class: e.status >= 400 ? 'num error-text' : 'num', text: String(e.status)}),
        h('td', {}, e.error ? h('span', {class: 'error-text', text: e.error}) : null,
          e.error && e.detail ? ' — ' : null, e.detail || null)))))
      : h('p', {class: 'muted', text: 'No entries on this page.'}));
  }
  load(0);
  return () => { alive = false; };
}
