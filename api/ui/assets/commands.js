// Commands (PATCH /flows/commands): start, stop (soft or hard), pause, resume, for one flow or a
// selection. Each is confirmed in a dialog; the result is shown flow by flow.
import {h, fill, stateBadge, plural} from './dom.js';
import {request, errorBox, can} from './api.js';
import {confirmDialog} from './dialog.js';

export const COMMANDS = [
  {key: 'start', command: 'start', type: 0, label: 'Start', gerund: 'Starting'},
  {key: 'stop', command: 'stop', type: 0, label: 'Stop', gerund: 'Stopping'},
  {key: 'hard-stop', command: 'stop', type: 1, label: 'Hard stop', gerund: 'Hard-stopping', danger: true},
  {key: 'pause', command: 'pause', type: 0, label: 'Pause', gerund: 'Pausing'},
  {key: 'resume', command: 'resume', type: 0, label: 'Resume', gerund: 'Resuming'},
];

const EXPLAIN = {
  'start': 'Stopped, failed, paused and completed flows start; running ones are left as they are.',
  'stop': 'A soft stop: each flow finishes its current step (bounded by its stop timeout, then ' +
          'stopped hard).',
  'hard-stop': 'A hard stop: the flows are cancelled at once, without finishing their current step.',
  'pause': 'Running flows pause. Stopped, failed or completed flows cannot be paused: then ' +
           'nothing changes and the reason is shown.',
  'resume': 'Paused flows resume. Stopped, failed or completed flows cannot be resumed: then ' +
            'nothing changes and the reason is shown.',
};

/** The command buttons (nothing for a viewer). getIds() gives the flows to address. */
export function commandButtons(getIds, resultEl, {idPrefix = 'cmd', onDone} = {}) {
  if (!can('operator')) return null;
  return h('div', {class: 'command-buttons', role: 'group', 'aria-label': 'Commands'},
    COMMANDS.map(c => h('button', {
      type: 'button', id: `${idPrefix}-${c.key}`, 'data-testid': `${idPrefix}-${c.key}`,
      class: c.danger ? 'danger-outline' : '',
      onclick: async () => {
        const ids = getIds();
        if (!ids.length) {
          fill(resultEl, h('p', {class: 'muted', text: 'Select one flow or more first.'}));
          return;
        }
        await runCommand(c, ids, resultEl);
        onDone?.();
      },
    }, c.label)));
}

/** Confirms, sends the command and shows the result in resultEl (an aria-live region). */
export async function runCommand(c, ids, resultEl) {
  const list = ids.length <= 10 ? ids.join(', ') : `${ids.slice(0, 10).join(', ')} and ${ids.length - 10} more`;
  const yes = await confirmDialog({
    title: `${c.label} ${plural(ids.length, 'flow')}?`,
    body: [h('p', {}, h('strong', {text: list})), h('p', {class: 'muted', text: EXPLAIN[c.key]})],
    confirmLabel: `${c.label} ${plural(ids.length, 'flow')}`,
    danger: c.danger,
  });
  if (!yes) return null;
  fill(resultEl, h('p', {class: 'pending', 'data-testid': 'command-pending',
                         text: `${c.gerund} ${plural(ids.length, 'flow')}…`}));
  try {
    const r = await request('PATCH', '/flows/commands',
                            {body: {command: c.command, flow_ids: ids, type: c.type}});
    showResult(resultEl, r.body);
    return r.body;
  } catch (e) {
    fill(resultEl, errorBox(e, {title: `${c.label}: nothing was changed`, testid: 'command-error'}));
    return null;
  }
}

function showResult(el, body) {
  const details = Array.isArray(body.details) ? body.details : [];
  const counts = {};
  for (const d of details) counts[d.status] = (counts[d.status] || 0) + 1;
  const failed = details.filter(d => d.error || d.status === 'failed');
  const pending = details.filter(d => d.pending);
  const summary = Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(', ');
  fill(el, h('div', {class: failed.length ? 'result warn' : 'result ok', 'data-testid': 'command-result'},
    h('strong', {'data-testid': 'command-status', text: body.status}),
    ` — ${plural(details.length, 'flow')}: ${summary || 'none'}`,
    failed.length ? h('p', {text: `${plural(failed.length, 'flow')} failed: see below.`}) : null,
    pending.length ? h('p', {text: `${plural(pending.length, 'flow')} pending: the owner node ` +
                                    'has not carried the command out yet.'}) : null,
    h('details', {open: details.length <= 20 || failed.length > 0},
      h('summary', {text: 'Per-flow result'}),
      h('table', {class: 'compact', 'data-testid': 'command-details'},
        h('thead', {}, h('tr', {}, h('th', {scope: 'col', text: 'Flow'}),
                                   h('th', {scope: 'col', text: 'Status'}),
                                   h('th', {scope: 'col', text: 'Error'}))),
        h('tbody', {}, details.map(d => h('tr', {dataset: {flowId: d.flow_id}},
          h('td', {}, h('a', {href: `#/flows/${encodeURIComponent(d.flow_id)}`, text: d.flow_id})),
          h('td', {}, stateBadge(d.status), d.pending ? ' (pending)' : ''),
          h('td', {class: 'error-text', text: d.error || ''}))))))));
}
