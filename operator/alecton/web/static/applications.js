// The applications table (#rows): one row per application and target (and namespace, when
// the page shows every namespace the caller may list).

import { $, PHASE_TONE, ageElement, badge, cell, dash, el, placeholderRow } from './dom.js';
import { keepingFocus } from './focus.js';
import { guard } from './permissions.js';
import { state } from './state.js';

export const ROW_COLUMNS = 12;

export function renderRows(rows) {
  const body = $('#rows tbody');
  if (!rows.length) {
    const where = state.all ? 'in any namespace you may read' : 'in this namespace';
    body.replaceChildren(placeholderRow(ROW_COLUMNS, `No application is deployed ${where}.`));
    return;
  }
  body.replaceChildren(...rows.map(rowElement));
}

/**
 * One row as the live stream sent it (a Deployment changed): put in place of the old one,
 * the other rows untouched. False when it is not on the page (a new one): read it all.
 */
export function applyRow(row) {
  const selector = ['namespace', 'app', 'target']
    .map((key, i) => `[data-${key}="${CSS.escape(String([row.namespace, row.application, row.target][i] || ''))}"]`)
    .join('');
  const old = $(`#rows tbody tr${selector}`);
  if (!old) return false;
  keepingFocus(() => old.replaceWith(rowElement(row)));
  return true;
}

function rowElement(row) {
  const health = row.health || {};
  const differs = row.running && row.running !== row.version;
  const phase = cell('phase', 'Phase', badge(row.phase));
  if (row.promotion && row.promotion.hold) {
    // Short in the table (the message says how to resume); the whole reason on hover.
    phase.append(' ', el('span', { class: 'tag', title: `Automatic promotion is held: ${row.promotion.hold}`, text: 'held' }));
  }
  const message = cell('message', 'Message', el('span', { text: row.message || '' }));
  // (The Deployment's own message often is the promotion's, e.g. "waits for approval".)
  if (row.promotion && (row.promotion.state || row.promotion.message) && row.promotion.message !== row.message) {
    // The operator's message names the promotion already; the state alone needs a word.
    const words = row.promotion.message || `promotion ${row.promotion.state}`;
    message.append(el('span', { class: 'sub', text: words }));
  }
  return el(
    'tr',
    { dataset: { namespace: row.namespace || '', app: row.application, target: row.target } },
    el('td', { class: 'ns-col', dataset: { field: 'namespace', label: 'Namespace' }, text: row.namespace || '' }),
    cell('application', 'Application', el('strong', { text: row.application })),
    cell('target', 'Target', row.target),
    cell('cluster', 'Cluster', dash(row.cluster)),
    cell('version', 'Version', dash(row.version)),
    el('td', { class: differs ? 'running differs' : 'running', dataset: { field: 'running', label: 'Running' }, title: row.image || null }, differs ? row.running : ''),
    phase,
    cell('health', 'Health', el('span', { class: `health tone-${PHASE_TONE[health.state] || 'neutral'}`, title: health.message || null, text: dash(health.state) })),
    cell('revision', 'Revision', dash(row.revision)),
    cell('age', 'Age', ageElement(row.lastDeployed)),
    message,
    el('td', { class: 'actions', dataset: { field: 'actions' } }, ...actions(row)),
  );
}

function actions(row) {
  if (state.all) {
    // Every namespace at once: acting happens in the row's own namespace (its rights there).
    return [el('button', { type: 'button', dataset: { action: 'open-namespace', namespace: row.namespace || '' }, text: 'Open' })];
  }
  return [
    guard(el('button', { type: 'button', dataset: { action: 'deploy' }, text: 'Deploy…' }), 'deploy'),
    el('button', { type: 'button', dataset: { action: 'details' }, 'aria-controls': 'details', text: 'History' }),
  ];
}
