// The release history table (#history) in the details panel, newest first.

import { $, cell, commitLink, dash, el, localTime, placeholderRow } from './dom.js';
import { guard } from './permissions.js';

const CAUSES = { deploy: 'deploy', promotion: 'promotion', rollback: 'rollback', 'automatic-rollback': 'automatic rollback', retry: 'retry' };

function corrections(list) {
  if (!list || !list.length) return '—';
  return `${list.length}×, last ${String(list[0].result || '').toLowerCase() || 'unknown'}`;
}

// The chart (name-version); a chart pinned to its digest (spec.verify.chart) shows the digest
// too: what a rollback to the revision pulls again, and what the policy checks then.
function chart(release) {
  const digest = String(release.chartReference || '').split('@')[1] || '';
  const text = digest ? `${dash(release.chart)} @${digest.slice(0, 19)}…` : dash(release.chart);
  return el('span', { title: release.chartReference || null, text });
}

export function renderHistory(releases) {
  const body = $('#history tbody');
  if (!releases.length) {
    body.replaceChildren(placeholderRow(11, 'No release yet.'));
    return;
  }
  body.replaceChildren(...releases.map((release) => {
    const actions = el('td', { class: 'actions', dataset: { field: 'actions' } });
    if (release.status !== 'deployed') {
      actions.append(guard(el('button', {
        type: 'button', dataset: { action: 'rollback', revision: String(release.revision), version: release.version || '' },
        text: `Roll back to ${release.revision}`,
      }), 'deploy'));
    }
    return el('tr', { dataset: { revision: String(release.revision) }, class: release.status === 'deployed' ? 'current' : null },
      cell('revision', 'Revision', String(release.revision)),
      cell('status', 'Status', dash(release.status)),
      cell('version', 'Version', dash(release.version), release.source ? ' ' : null, commitLink(release.source)),
      cell('image', 'Image', dash(release.image)),
      cell('chart', 'Chart', chart(release)),
      cell('cause', 'Cause', release.cause in CAUSES ? CAUSES[release.cause] : dash(release.cause)),
      cell('healthy', 'Healthy', release.healthy === true ? 'yes' : release.healthy === false ? 'no' : '—'),
      cell('corrections', 'Drift corrections', corrections(release.corrections)),
      cell('updated', 'Updated', localTime(release.updated)),
      cell('description', 'Description', dash(release.description)),
      actions);
  }));
}
