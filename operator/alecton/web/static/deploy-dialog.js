// The deploy dialog (#deploy-dialog): set a target's version (POST /v1/applications/deploy).

import { ApiError, api } from './api.js';
import { openDialog, setBusy } from './dialogs.js';
import { $, el } from './dom.js';
import { scheduleRefresh } from './events.js';
import { state } from './state.js';
import { toast, toastError } from './toast.js';

export function openDeploy(application, target) {
  const dialog = $('#deploy-dialog');
  const input = $('input[name="version"]', dialog);
  state.pending = { kind: 'deploy', application, target };
  $('#deploy-title').textContent = `Deploy ${application} to ${target}`;
  input.value = '';
  $('input[name="override"]', dialog).value = '';
  $('#deploy-versions').replaceChildren();
  $('[data-role="versions-hint"]', dialog).textContent = 'Looking up known versions…';
  openDialog(dialog, input);
  loadVersions(state.pending);
}

/** The Row has no logical image name: Application.image gives it, then its Images. */
async function loadVersions(pending) {
  const hint = $('#deploy-dialog [data-role="versions-hint"]');
  try {
    const apps = await api('GET', '/v1/applications', { params: { name: pending.application } });
    const app = (apps.applications || []).find((a) => a.name === pending.application);
    if (!app || !app.image) throw new ApiError('the application names no image', 0);
    const found = await api('GET', '/v1/images', { params: { name: app.image } });
    if (state.pending !== pending) return; // the dialog was closed or reopened meanwhile
    const versions = [...new Set((found.images || []).filter((i) => i.name === app.image).map((i) => i.version))]
      .sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
    $('#deploy-versions').replaceChildren(...versions.map((v) => el('option', { value: v })));
    hint.textContent = versions.length
      ? `Known versions of image ${app.image}: ${versions.slice(0, 8).join(', ')}${versions.length > 8 ? ', …' : ''}`
      : `No version of image ${app.image} is registered yet.`;
  } catch (err) {
    if (state.pending === pending) hint.textContent = `Known versions unavailable: ${err.message}`;
  }
}

export async function confirmDeploy(dialog) {
  const { application, target } = state.pending;
  const version = $('input[name="version"]', dialog).value.trim();
  const overrideFreeze = $('input[name="override"]', dialog).value.trim();
  if (!version) return;
  setBusy(dialog, true);
  try {
    const body = { application, target, version };
    if (overrideFreeze) body.overrideFreeze = overrideFreeze; // recorded on the Deployment, with who
    await api('POST', '/v1/applications/deploy', { body });
    dialog.close();
    toast(`Deploying ${application} ${version} to ${target}…`);
    scheduleRefresh();
  } catch (err) {
    toastError(err); // the dialog stays open so the version can be corrected
  } finally {
    setBusy(dialog, false);
  }
}
