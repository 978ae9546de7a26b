// The toast (the live region exists from the start so screen readers announce it).

import { ApiError } from './api.js';
import { $ } from './dom.js';

let toastTimer = 0;

/** #toast holds only the message (tests read its text); the box around it is the visual. */
export function toast(message, { error = false } = {}) {
  const region = $('#toast');
  clearTimeout(toastTimer);
  // Outside an open modal dialog everything is inert (dimmed, unclickable, not announced):
  // while one is open the toast lives inside it; closing the dialog moves it back.
  const host = $('dialog[open]') || document.body;
  if (region.parentElement.parentElement !== host) host.append(region.parentElement);
  region.setAttribute('role', error ? 'alert' : 'status');
  region.setAttribute('aria-live', error ? 'assertive' : 'polite');
  region.textContent = message;
  const box = region.parentElement;
  box.classList.add('show');
  box.classList.toggle('error', error);
  // Errors stay until dismissed or replaced: a person must be able to read them.
  if (!error) toastTimer = setTimeout(hideToast, 6000);
}

export function hideToast() {
  const region = $('#toast');
  region.parentElement.classList.remove('show', 'error');
  region.textContent = '';
}

export function toastError(err) {
  toast(err instanceof ApiError ? err.message : String(err), { error: true });
}
