// The freeze banner (#freeze-banner): the active deploy freezes of the namespace and the
// platform (GET /v1/freezes), each with its reason and end. Hidden when nothing is frozen.

import { api } from './api.js';
import { $, el } from './dom.js';

const REFRESH_MS = 30000; // freezes start and end by the clock, not only by events

function until(freeze) {
  return freeze.activeUntil ? `until ${new Date(freeze.activeUntil).toLocaleString()}` : 'until it is ended';
}

function item(freeze) {
  const scope = freeze.kind === 'ClusterFreeze' ? 'Platform freeze' : 'Freeze';
  return el(
    'li',
    { dataset: { freeze: freeze.name, kind: freeze.kind } },
    el('strong', { text: `${scope} ${freeze.name}` }),
    `: ${freeze.reason} (${until(freeze)})`,
  );
}

export async function loadFreezes() {
  const banner = $('#freeze-banner');
  let active = [];
  try {
    const found = await api('GET', '/v1/freezes');
    active = (found.freezes || []).filter((f) => f.active);
  } catch {
    active = []; // no right to read freezes: the deploy itself still says what holds it
  }
  banner.hidden = active.length === 0;
  $('[data-role="freeze-list"]', banner).replaceChildren(...active.map(item));
}

/** Look again every 30 s (the first load is part of loading the namespace). */
export function watchFreezes() {
  setInterval(loadFreezes, REFRESH_MS);
}
