// Pending promotions (#promotions): approve, reject, and the diff each would apply.

import { $, badge, dash, el } from './dom.js';
import { guard } from './permissions.js';
import { state } from './state.js';

export function renderPromotions(promotions) {
  const list = $('#promotions ul');
  if (!promotions.length) {
    state.diffs.clear();
    list.replaceChildren(el('li', { class: 'empty', text: 'No promotion waits for a decision.' }));
    return;
  }
  const kept = new Set();
  list.replaceChildren(...promotions.map((promotion) => {
    const key = `${promotion.name}|${promotion.to}`;
    kept.add(key);
    const diffOpen = state.diffs.has(key) && !state.diffs.get(key).hidden;
    const approve = guard(el('button', { type: 'button', class: 'primary', dataset: { action: 'approve' }, text: 'Approve…' }), 'approve');
    if (promotion.state === 'Approved' && !approve.disabled) {
      approve.disabled = true;
      approve.title = 'already approved';
    }
    const item = el('li', { dataset: { promotion: promotion.name, app: promotion.application, target: promotion.target, to: promotion.to, namespace: promotion.namespace || '' } },
      el('div', { class: 'promotion-head' },
        el('strong', { text: `${promotion.namespace && state.all ? `${promotion.namespace}/` : ''}${promotion.application} → ${promotion.target}` }),
        el('span', { class: 'versions', text: `${dash(promotion.from)} → ${dash(promotion.to)}` }),
        badge(promotion.state || 'Pending')),
      promotion.message ? el('p', { class: 'message', text: promotion.message }) : null,
      promotion.approvedBy ? el('p', { class: 'sub', text: `approved by ${promotion.approvedBy}` }) : null,
      el('div', { class: 'actions' },
        approve,
        guard(el('button', { type: 'button', dataset: { action: 'reject' }, text: 'Reject…' }), 'approve'),
        el('button', { type: 'button', dataset: { action: 'diff' }, 'aria-expanded': String(diffOpen), text: diffOpen ? 'Hide diff' : 'Diff' })));
    if (state.diffs.has(key)) item.append(state.diffs.get(key)); // an open diff survives re-renders
    return item;
  }));
  for (const key of state.diffs.keys()) if (!kept.has(key)) state.diffs.delete(key);
}

export function promotionOf(item) {
  return { name: item.dataset.promotion, application: item.dataset.app, target: item.dataset.target, to: item.dataset.to, namespace: item.dataset.namespace };
}
