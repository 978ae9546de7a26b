// The rollback dialog (#rollback-dialog): roll the open details' target back to a revision
// of its history (POST /v1/applications/rollback).

import { api } from './api.js';
import { openDialog, setBusy } from './dialogs.js';
import { $ } from './dom.js';
import { scheduleRefresh } from './events.js';
import { state } from './state.js';
import { toast, toastError } from './toast.js';

export function openRollback(revision, version) {
  const { application, target } = state.details;
  state.pending = { kind: 'rollback', application, target, revision };
  const dialog = $('#rollback-dialog');
  $('#rollback-title').textContent = `Roll back ${application} on ${target}`;
  $('[data-role="rollback-text"]', dialog).textContent =
    `Roll ${application} on ${target} back to revision ${revision}${version ? ` (version ${version})` : ''}? ` +
    'Helm makes a new revision with that revision\'s chart and values.';
  openDialog(dialog, $('[data-action="cancel"]', dialog));
}

export async function confirmRollback(dialog) {
  const { application, target, revision } = state.pending;
  setBusy(dialog, true);
  try {
    await api('POST', '/v1/applications/rollback', { body: { application, target, version: revision } });
    dialog.close();
    toast(`Rolling ${application} on ${target} back to revision ${revision}…`);
    scheduleRefresh();
  } catch (err) {
    toastError(err);
  } finally {
    setBusy(dialog, false);
  }
}
