// The diff under a promotion (GET /v1/diff): what its version would change, object by object.

import { api, seg } from './api.js';
import { badge, dash, el } from './dom.js';
import { promotionOf } from './promotions.js';
import { state } from './state.js';
import { toastError } from './toast.js';

/** Show (fetching once) or hide the diff under a promotion. */
export async function toggleDiff(item, button) {
  const promotion = promotionOf(item);
  const key = `${promotion.name}|${promotion.to}`;
  let region = state.diffs.get(key);
  if (region && region.dataset.failed) region.remove(); // a failed diff is fetched again
  else if (region) {
    region.hidden = !region.hidden;
    button.setAttribute('aria-expanded', String(!region.hidden));
    button.textContent = region.hidden ? 'Diff' : 'Hide diff';
    return;
  }
  region = el('div', { class: 'diff', dataset: { role: 'diff' } },
    el('p', { class: 'muted', text: `Rendering what ${promotion.to} would change…` }));
  state.diffs.set(key, region);
  item.append(region);
  button.setAttribute('aria-expanded', 'true');
  button.textContent = 'Hide diff';
  try {
    const diff = await api('GET', `/v1/diff/${seg(promotion.application)}/${seg(promotion.target)}`, { params: { version: promotion.to, namespace: promotion.namespace } });
    region.replaceChildren(...diffContent(diff));
  } catch (err) {
    region.replaceChildren(el('p', { class: 'error-text', text: `No diff: ${err.message}` }));
    region.dataset.failed = 'true';
    if (err.status === 401) toastError(err);
  }
}

function diffContent(diff) {
  const parts = [el('p', { class: 'summary', text: `Version ${dash(diff.version)}: ${dash(diff.summary)}` })];
  for (const object of diff.objects || []) {
    const where = object.namespace ? `${object.namespace}/${object.name}` : object.name;
    parts.push(el('h4', {}, `${object.kind} ${where} `, badge(object.change)));
    if ((object.fields || []).length) parts.push(el('p', { class: 'sub', text: `fields: ${object.fields.join(', ')}` }));
    if (object.diff) parts.push(diffText(object.diff));
  }
  return parts;
}

/** A unified diff in a <pre>, one span per line so + and - lines can be coloured. */
function diffText(text) {
  const pre = el('pre', { class: 'diff-text', tabIndex: 0 });
  for (const line of text.replace(/\n$/, '').split('\n')) {
    let kind = '';
    if (line.startsWith('+++') || line.startsWith('---')) kind = 'file';
    else if (line.startsWith('@@')) kind = 'hunk';
    else if (line.startsWith('+')) kind = 'add';
    else if (line.startsWith('-')) kind = 'del';
    pre.append(el('span', { class: kind ? `line ${kind}` : 'line', text: line }), '\n');
  }
  return pre;
}
