// An accessible confirmation: a modal <dialog> (focus moves into it, Escape cancels, focus goes
// back to where it was when it closes).
import {h} from './dom.js';

/**
 * confirmDialog({title, body: Node|string, confirmLabel, danger, extra: Node}) -> Promise<bool>
 * `extra` (e.g. a checkbox) is shown above the buttons and can be read after it resolves.
 */
export function confirmDialog({title, body, confirmLabel = 'Confirm', danger = false, extra = null}) {
  return new Promise(resolve => {
    const opener = document.activeElement;
    const titleId = 'dialog-title';
    const ok = h('button', {type: 'submit', value: 'ok', id: 'confirm-ok', 'data-testid': 'confirm-ok',
                            class: danger ? 'danger' : 'primary', text: confirmLabel});
    const cancel = h('button', {type: 'submit', value: 'cancel', id: 'confirm-cancel',
                                'data-testid': 'confirm-cancel', text: 'Cancel'});
    // the safe choice has the focus when the action is destructive
    (danger ? cancel : ok).setAttribute('autofocus', '');
    const dlg = h('dialog', {id: 'confirm-dialog', 'aria-labelledby': titleId, 'data-testid': 'confirm-dialog'},
      h('form', {method: 'dialog'},
        h('h2', {id: titleId, text: title}),
        h('div', {class: 'dialog-body'}, body),
        extra,
        h('div', {class: 'buttons'}, cancel, ok)));
    dlg.addEventListener('close', () => {
      const yes = dlg.returnValue === 'ok';
      dlg.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(yes);
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}
