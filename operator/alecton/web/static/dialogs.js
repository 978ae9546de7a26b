// The modal dialogs' common part: opening, the busy state, submit/cancel/close wiring.
// Each dialog's own content and request live in deploy-dialog.js, rollback-dialog.js and
// decision-dialog.js.

import { $ } from './dom.js';
import { focusSelector, refocus } from './focus.js';
import { state } from './state.js';

/** showModal, remembering how to find the opener again (re-renders may replace it). */
export function openDialog(dialog, focusTarget) {
  dialog.dataset.returnFocus = focusSelector() || '';
  setBusy(dialog, false);
  dialog.showModal();
  focusTarget.focus();
}

export function setBusy(dialog, busy) {
  const submit = $('button[type="submit"]', dialog);
  submit.disabled = busy;
  dialog.toggleAttribute('aria-busy', busy);
}

/** `confirmers`: dialog id -> the function that sends its request when it is submitted. */
export function wireDialogs(confirmers) {
  for (const [id, confirm] of Object.entries(confirmers)) {
    const dialog = document.getElementById(id);
    $('form', dialog).addEventListener('submit', (event) => {
      event.preventDefault(); // the dialog closes only when the server said yes
      if (state.pending) confirm(dialog);
    });
    $('[data-action="cancel"]', dialog).addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      state.pending = null;
      const box = $('#toast').parentElement;
      if (dialog.contains(box)) document.body.append(box);
      refocus(dialog.dataset.returnFocus); // the opener may have been re-rendered meanwhile
    });
  }
}
