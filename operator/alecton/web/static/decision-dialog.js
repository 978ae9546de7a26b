// The decision dialog (#decision-dialog): approve or reject a pending promotion, with an
// optional comment (POST /v1/promotions/approve or /v1/promotions/reject).

import { api } from './api.js';
import { openDialog, setBusy } from './dialogs.js';
import { $ } from './dom.js';
import { scheduleRefresh } from './events.js';
import { state } from './state.js';
import { toast, toastError } from './toast.js';

export function openDecision(decision, promotion) {
  state.pending = { kind: decision, ...promotion };
  const dialog = $('#decision-dialog');
  const verb = decision === 'approve' ? 'Approve' : 'Reject';
  $('#decision-title').textContent = `${verb} promotion`;
  $('[data-role="decision-text"]', dialog).textContent =
    `${verb} promoting ${promotion.application} to ${promotion.target}, version ${promotion.to}?`;
  const submit = $('[data-action="confirm-decision"]', dialog);
  submit.textContent = verb;
  submit.dataset.decision = decision;
  submit.classList.toggle('danger', decision === 'reject');
  const comment = $('textarea[name="comment"]', dialog);
  comment.value = '';
  openDialog(dialog, comment);
}

export async function confirmDecision(dialog) {
  const { kind, application, target, to, namespace } = state.pending;
  const comment = $('textarea[name="comment"]', dialog).value.trim();
  const body = { application, target, version: to };
  if (comment) body.comment = comment;
  setBusy(dialog, true);
  try {
    await api('POST', `/v1/promotions/${kind}`, { body, params: { namespace } }); // the promotion's own
    dialog.close();
    toast(`${kind === 'approve' ? 'Approved' : 'Rejected'} ${application} ${to} for ${target}.`);
    scheduleRefresh();
  } catch (err) {
    toastError(err);
  } finally {
    setBusy(dialog, false);
  }
}
