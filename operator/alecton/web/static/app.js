// alecton dashboard: static ES modules on top of the HTTP API (docs/http-api.md).
// No framework, no build step and no innerHTML with server data: every string from the
// server goes through textContent, so messages holding <, & or quotes are shown, never parsed.
//
// This module is the entry (index.html loads it): it wires the others, one a responsibility.
// api.js requests and the session token; state.js the shared state; dom.js element helpers;
// toast.js messages; focus.js focus across re-renders; permissions.js whoami and rights;
// events.js live updates; overview.js with applications.js, promotions.js, diff.js and
// images.js the overview; freeze-banner.js the banner of active freezes; details.js and
// history.js the details panel; dialogs.js the dialogs' common part, with deploy-dialog.js,
// rollback-dialog.js and decision-dialog.js; delivery.js the Delivery page (DORA metrics
// and their charts).

import { takeTokenFromUrl } from './api.js';
import { confirmDecision, openDecision } from './decision-dialog.js';
import { currentPage, loadDelivery, showPage } from './delivery.js';
import { confirmDeploy, openDeploy } from './deploy-dialog.js';
import { closeDetails, openDetails } from './details.js';
import { wireDialogs } from './dialogs.js';
import { loadFreezes, watchFreezes } from './freeze-banner.js';
import { toggleDiff } from './diff.js';
import { $, refreshAges } from './dom.js';
import { connectEvents } from './events.js';
import { loadOverview, showPlaceholders } from './overview.js';
import { loadWhoami } from './permissions.js';
import { promotionOf } from './promotions.js';
import { confirmRollback, openRollback } from './rollback-dialog.js';
import { state } from './state.js';
import { hideToast } from './toast.js';

const AGE_TICK_MS = 10000;

// ----- namespace -----------------------------------------------------------------------------

function switchNamespace(ns, all = false) {
  state.ns = ns;
  state.all = all;
  $('#namespace').value = ns;
  $('#all-namespaces').checked = all;
  showScope();
  const url = new URL(location.href);
  if (ns) url.searchParams.set('namespace', ns);
  else url.searchParams.delete('namespace');
  if (all) url.searchParams.set('allNamespaces', 'true');
  else url.searchParams.delete('allNamespaces');
  history.replaceState(null, '', url.pathname + url.search + url.hash);
  closeDetails();
  showPlaceholders('Loading…');
  loadAll();
}

/** Every namespace at once, or one: the namespace column shows only for the first. */
function showScope() {
  document.body.toggleAttribute('data-all-namespaces', state.all);
}

async function loadAll() {
  connectEvents();
  await loadWhoami(); // before the overview: `can` decides which buttons are enabled
  await Promise.all([loadOverview(), loadFreezes()]);
  if (currentPage() === 'delivery') loadDelivery();
}

// ----- wiring ----------------------------------------------------------------------------------

/** One click listener for all buttons the tables and lists (re)create. */
function onClick(event) {
  const button = event.target.closest('button[data-action]');
  if (!button || button.disabled) return;
  const action = button.dataset.action;
  const row = button.closest('tr[data-app]');
  const item = button.closest('li[data-promotion]');
  if (action === 'deploy' && row) openDeploy(row.dataset.app, row.dataset.target);
  else if (action === 'details' && row) openDetails(row.dataset.app, row.dataset.target);
  else if (action === 'open-namespace') switchNamespace(button.dataset.namespace);
  else if (action === 'close-details') closeDetails();
  else if (action === 'rollback' && state.details) openRollback(Number(button.dataset.revision), button.dataset.version);
  else if ((action === 'approve' || action === 'reject') && item) openDecision(action, promotionOf(item));
  else if (action === 'diff' && item) toggleDiff(item, button);
  else if (action === 'dismiss-toast') hideToast();
  else if (action === 'show-page') showPage(button.dataset.page);
  else if (action === 'reload-delivery') loadDelivery();
}

function start() {
  takeTokenFromUrl();
  $('#namespace').value = state.ns;
  $('#all-namespaces').checked = state.all;
  showScope();
  $('#namespace-form').addEventListener('submit', (event) => {
    event.preventDefault();
    switchNamespace($('#namespace').value.trim());
  });
  $('#all-namespaces').addEventListener('change', (event) => switchNamespace(state.ns, event.target.checked));
  document.addEventListener('click', onClick);
  $('#delivery-since').addEventListener('change', loadDelivery);
  showPage(currentPage(), { load: false }); // loadAll loads it
  wireDialogs({ 'deploy-dialog': confirmDeploy, 'rollback-dialog': confirmRollback, 'decision-dialog': confirmDecision });
  setInterval(refreshAges, AGE_TICK_MS);
  loadAll();
  watchFreezes();
}

start();
