// Permissions: who the caller is and which buttons they may use (GET /v1/whoami).

import { api } from './api.js';
import { $, dash } from './dom.js';
import { state } from './state.js';
import { toastError } from './toast.js';

const NEEDS = {
  deploy: 'needs the right to patch deployments.alecton.dev',
  approve: 'needs the right to patch promotions.alecton.dev',
};

export function guard(button, right) {
  if (state.can[right] === false) {
    button.disabled = true;
    button.title = NEEDS[right];
  }
  return button;
}

export async function loadWhoami() {
  try {
    const me = await api('GET', '/v1/whoami');
    state.can = { ...state.can, ...(me.can || {}) };
    $('#whoami').textContent = `${dash(me.user)} (${dash(me.namespace)})`;
    $('#whoami').title = (me.groups || []).length ? `groups: ${me.groups.join(', ')}` : '';
    $('#namespace').placeholder = me.namespace || 'default';
  } catch (err) {
    $('#whoami').textContent = 'unknown user';
    toastError(err);
  }
}
