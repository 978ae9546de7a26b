// Live updates: the server's event stream (GET /v1/events). A changed Deployment comes as
// its row, which replaces the row on the page (thousands of rows stay as they are); any
// other change triggers a debounced refetch of the overview.

import { ApiError, NOT_SIGNED_IN, apiUrl, authHeaders, scope } from './api.js';
import { applyRow } from './applications.js';
import { loadDetails } from './details.js';
import { $ } from './dom.js';
import { loadOverview } from './overview.js';
import { state } from './state.js';
import { toast } from './toast.js';

const REFRESH_DEBOUNCE_MS = 300;

function setLive(text, tone) {
  const live = $('#live');
  live.textContent = text;
  live.className = `live ${tone}`;
}

/** Many changes arrive together (a deploy touches Deployment, Promotion...): fetch once. */
export function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => {
    loadOverview();
    loadDetails();
  }, REFRESH_DEBOUNCE_MS);
}

/** A Deployment's new row: patched in place; its details panel read again if open. */
function onRow(row) {
  if (!applyRow(row)) {
    scheduleRefresh();
    return;
  }
  const open = state.details;
  if (open && open.application === row.application && open.target === row.target && !state.all) {
    clearTimeout(state.detailsTimer);
    state.detailsTimer = setTimeout(loadDetails, REFRESH_DEBOUNCE_MS);
  }
  document.body.dataset.rowUpdates = String(Number(document.body.dataset.rowUpdates || 0) + 1);
}

/**
 * The server's events over fetch (EventSource cannot send the Authorization header).
 * Yields [event, data] pairs of the text/event-stream format: `event:` and `data:` lines,
 * a blank line ends an event, lines starting with `:` are keep-alives.
 */
async function* serverEvents(url, signal) {
  const response = await fetch(url, { headers: { ...authHeaders(), Accept: 'text/event-stream' }, credentials: 'same-origin', signal });
  if (!response.ok || !response.body) throw new ApiError(response.status === 401 ? NOT_SIGNED_IN : `HTTP ${response.status}`, response.status);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = 'message';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r?\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === '') {
        if (data.length) yield [event, data.join('\n')];
        event = 'message';
        data = [];
      } else if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
  }
}

/**
 * Follow the event stream; reconnect when it ends (the server ends streams after a while)
 * or breaks. `missed`: this connection replaces one that broke, so refetch once it is ready.
 */
export async function connectEvents(missed = false) {
  if (state.events) state.events.abort();
  const controller = new AbortController();
  state.events = controller;
  setLive('connecting…', 'neutral');
  let retryIn = 1000;
  for (;;) {
    try {
      for await (const [event, data] of serverEvents(apiUrl('/v1/events', scope()), controller.signal)) {
        if (event === 'ready') {
          setLive('live', 'ok');
          retryIn = 1000;
          if (missed) scheduleRefresh(); // changes during the outage came without events
        } else if (event === 'row') onRow(JSON.parse(data));
        else if (event === 'change') scheduleRefresh();
      }
    } catch (err) {
      if (controller.signal.aborted) return; // replaced (namespace switch)
      if (err instanceof ApiError && err.status === 401) {
        setLive('not signed in', 'warn');
        toast(NOT_SIGNED_IN, { error: true });
        return;
      }
      retryIn = Math.min(retryIn * 2, 10000);
    }
    if (controller.signal.aborted) return;
    setLive('reconnecting…', 'warn');
    missed = true;
    await new Promise((resolve) => setTimeout(resolve, retryIn));
    if (controller.signal.aborted || state.events !== controller) return;
  }
}
