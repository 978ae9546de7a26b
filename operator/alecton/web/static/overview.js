// The overview (GET /v1/overview): the applications table, pending promotions and images.

import { api, scope } from './api.js';
import { ROW_COLUMNS, renderRows } from './applications.js';
import { $, el, placeholderRow } from './dom.js';
import { keepingFocus } from './focus.js';
import { renderImages } from './images.js';
import { renderPromotions } from './promotions.js';
import { state } from './state.js';
import { toastError } from './toast.js';

export async function loadOverview() {
  const seq = ++state.overviewSeq;
  let data;
  try {
    data = await api('GET', '/v1/overview', { params: scope() });
  } catch (err) {
    if (seq !== state.overviewSeq) return;
    toastError(err);
    // Nothing shown for this namespace yet: say why in place of the table.
    if (state.shownNs !== (state.all ? '*' : state.ns)) showPlaceholders(`Could not load: ${err.message}`);
    return;
  }
  if (seq !== state.overviewSeq) return; // a newer request was started meanwhile
  state.shownNs = state.all ? '*' : state.ns;
  keepingFocus(() => {
    renderRows(data.rows || []);
    renderPromotions(data.promotions || []);
    renderImages(data.images || []);
  });
  state.renders += 1;
  document.body.dataset.renders = String(state.renders);
  document.body.dataset.ready = 'true';
}

/** Empty the overview (another namespace's data must not linger under a new name). */
export function showPlaceholders(text) {
  state.diffs.clear();
  $('#rows tbody').replaceChildren(placeholderRow(ROW_COLUMNS, text));
  $('#promotions ul').replaceChildren(el('li', { class: 'empty', text }));
  $('#images').tBodies[0].replaceChildren(placeholderRow($('#images').tHead.rows[0].cells.length, text));
}
