// The details panel (#details): one deployment's facts, failed versions, conditions,
// promotions and release history (GET /v1/deployments/<application>/<target>).

import { api, seg } from './api.js';
import { $, badge, cell, dash, el, localTime } from './dom.js';
import { keepingFocus, refocus } from './focus.js';
import { renderHistory } from './history.js';
import { state } from './state.js';
import { toastError } from './toast.js';

export function openDetails(application, target) {
  state.details = { application, target };
  const panel = $('#details');
  $('#details-title').textContent = `${application} on ${target}`;
  $('[data-role="details-body"]', panel).replaceChildren(el('p', { class: 'muted', text: 'Loading…' }));
  $('#history tbody').replaceChildren();
  panel.hidden = false;
  panel.scrollIntoView({ block: 'start' });
  $('#details-title').focus({ preventScroll: true });
  loadDetails();
}

export function closeDetails() {
  const previous = state.details;
  state.details = null;
  state.detailsSeq += 1; // drop answers still on their way
  $('#details').hidden = true;
  if (previous) {
    refocus(`tr[data-app="${CSS.escape(previous.application)}"][data-target="${CSS.escape(previous.target)}"] [data-action="details"]`, true);
  }
}

export async function loadDetails() {
  if (!state.details) return;
  const { application, target } = state.details;
  const seq = ++state.detailsSeq;
  let data;
  try {
    data = await api('GET', `/v1/deployments/${seg(application)}/${seg(target)}`);
  } catch (err) {
    if (seq !== state.detailsSeq) return;
    $('#details [data-role="details-body"]').replaceChildren(el('p', { class: 'error-text', text: err.message }));
    if (err.status === 401) toastError(err);
    return;
  }
  if (seq !== state.detailsSeq) return;
  keepingFocus(() => renderDetails(data));
}

function renderDetails(data) {
  const deployment = data.deployment || {};
  const health = deployment.health || {};
  const facts = el('dl', { class: 'facts' });
  const fact = (term, ...value) => facts.append(el('div', {}, el('dt', { text: term }), el('dd', {}, ...value)));
  fact('Phase', badge(deployment.phase));
  fact('Message', deployment.message || '—');
  fact('Version', dash(deployment.version), deployment.running && deployment.running !== deployment.version ? ` (running ${deployment.running})` : '');
  fact('Revision', dash(deployment.revision));
  fact('Cluster', dash(deployment.cluster));
  fact('Health', badge(health.state), health.message ? ` ${health.message}` : '');
  if ((health.progressing || []).length) fact('Not ready yet', el('ul', {}, health.progressing.map((p) => el('li', { text: p }))));
  fact('Last deployed', localTime(deployment.lastDeployed));

  const parts = [facts];
  const failed = data.failedVersions || [];
  if (failed.length) {
    parts.push(el('h3', { text: 'Failed versions' }), el('ul', { class: 'failed-versions' }, failed.map((f) =>
      el('li', { dataset: { version: f.version } },
        el('strong', { text: dash(f.version) }),
        f.revision ? ` (revision ${f.revision})` : '',
        f.reason ? `: ${f.reason}` : '',
        f.failedAt ? el('span', { class: 'sub', text: ` at ${new Date(f.failedAt).toLocaleString()}` }) : ''))));
  }
  const conditions = data.conditions || [];
  if (conditions.length) {
    parts.push(el('h3', { text: 'Conditions' }), el('table', { class: 'stack conditions', 'aria-label': 'Conditions' },
      el('thead', {}, el('tr', {}, ['Type', 'Status', 'Reason', 'Message'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, conditions.map((c) => el('tr', { dataset: { condition: c.type } },
        cell('type', 'Type', dash(c.type)), cell('status', 'Status', dash(c.status)),
        cell('reason', 'Reason', dash(c.reason)), cell('message', 'Message', dash(c.message)))))));
  }
  const promotions = data.promotions || [];
  if (promotions.length) {
    parts.push(el('h3', { text: 'Promotions' }), el('ul', { class: 'plain' }, promotions.map((p) =>
      el('li', {}, badge(p.state || 'Pending'), ` ${dash(p.from)} → ${dash(p.to)}`, p.message ? ` — ${p.message}` : ''))));
  }
  $('#details [data-role="details-body"]').replaceChildren(...parts);
  renderHistory(data.releases || []);
}
