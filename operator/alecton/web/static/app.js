// alecton dashboard: a static ES module on top of the HTTP API (docs/http-api.md).
// No framework and no innerHTML with server data: every string from the server goes
// through textContent, so messages holding <, & or quotes are shown, never parsed.

const FETCH_TIMEOUT_MS = 30000;
const REFRESH_DEBOUNCE_MS = 300;
const AGE_TICK_MS = 10000;
const NOT_SIGNED_IN = 'Not signed in: open the URL `alecton dashboard` printed';

const state = {
  ns: new URLSearchParams(location.search).get('namespace') || '',
  can: { deploy: true, approve: true, createImages: true, editApplications: true },
  renders: 0,
  overviewSeq: 0, // only the newest overview answer is rendered
  shownNs: null, // the namespace whose overview is on screen
  details: null, // {application, target} while the details panel is open
  detailsSeq: 0,
  events: null,
  refreshTimer: 0,
  diffs: new Map(), // "promotion|to" -> diff region, kept across re-renders
  pending: null, // what the open dialog acts on
};

const $ = (selector, root = document) => root.querySelector(selector);

// ----- small DOM helpers ---------------------------------------------------------------

/** createElement with attributes/properties and children (strings become text nodes). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key in node && typeof value !== 'string') node[key] = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A table cell a test (data-field) and the phone layout (data-label) can find. */
function cell(field, label, ...children) {
  return el('td', { dataset: { field, label } }, ...children);
}

const dash = (value) => (value === undefined || value === null || value === '' ? '—' : String(value));

/** kubectl-style age: 45s, 3m, 5h, 2d, 3y. */
function age(timestamp) {
  const then = Date.parse(timestamp);
  if (!timestamp || Number.isNaN(then)) return '—';
  const seconds = Math.max(0, Math.floor((Date.now() - then) / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  if (seconds < 86400 * 365) return `${Math.floor(seconds / 86400)}d`;
  return `${Math.floor(seconds / (86400 * 365))}y`;
}

/** A <time> showing the age; refreshAges() recomputes it, the title keeps the full time. */
function ageElement(timestamp) {
  const node = el('time', { class: 'age', text: age(timestamp) });
  if (timestamp) {
    node.dateTime = timestamp;
    node.title = new Date(timestamp).toLocaleString();
  }
  return node;
}

function refreshAges() {
  for (const node of document.querySelectorAll('time.age[datetime]')) node.textContent = age(node.dateTime);
}

function localTime(timestamp) {
  if (!timestamp || Number.isNaN(Date.parse(timestamp))) return dash(timestamp);
  return el('time', { dateTime: timestamp, title: timestamp, text: new Date(timestamp).toLocaleString() });
}

const PHASE_TONE = {
  Deployed: 'ok', Healthy: 'ok', Applied: 'ok', Approved: 'ok',
  Failed: 'bad', Conflict: 'bad', Unhealthy: 'bad', Rejected: 'bad',
  RolledBack: 'warn', RollingBack: 'warn', Degraded: 'warn', Superseded: 'neutral',
  Verifying: 'info', Deploying: 'info', Progressing: 'info',
};

function badge(text) {
  return el('span', { class: `badge tone-${PHASE_TONE[text] || 'neutral'}`, text: dash(text) });
}

// ----- talking to the server -------------------------------------------------------------

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** Path plus query; `namespace=` is added when one is chosen, never a token. */
function apiUrl(path, params = {}) {
  const query = new URLSearchParams();
  if (state.ns) query.set('namespace', state.ns);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

// `alecton dashboard` prints a URL with its token in the fragment, which no browser sends
// to a server. It is kept in localStorage (this origin only: scheme, host and port) and
// sent as a header, never as a cookie (cookies would reach every port of 127.0.0.1).
// Behind an authenticating proxy there is no token here: the proxy adds the header.
const TOKEN_KEY = 'alecton-dashboard-token';

function takeTokenFromUrl() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get('token');
  if (!token) return;
  localStorage.setItem(TOKEN_KEY, token);
  fragment.delete('token');
  const rest = fragment.toString();
  history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
}

function authHeaders() {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** fetch + JSON; non-2xx becomes an ApiError carrying the server's `error` words. */
async function api(method, path, { params, body } = {}) {
  const init = { method, headers: authHeaders(), credentials: 'same-origin', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(apiUrl(path, params), init);
  } catch (err) {
    const timedOut = err && (err.name === 'TimeoutError' || err.name === 'AbortError');
    throw new ApiError(timedOut ? 'The server did not answer within 30 s.' : 'Cannot reach the server.', 0);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null; // an empty or non-JSON answer: the status code still tells
  }
  if (response.status === 401) throw new ApiError(NOT_SIGNED_IN, 401);
  if (!response.ok) {
    const words = data && typeof data.error === 'string' && data.error ? data.error : response.statusText;
    throw new ApiError(words || `HTTP ${response.status}`, response.status);
  }
  return data;
}

const seg = encodeURIComponent;

// ----- toast (the live region exists from the start so screen readers announce it) -------

let toastTimer = 0;

/** #toast holds only the message (tests read its text); the box around it is the visual. */
function toast(message, { error = false } = {}) {
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

function hideToast() {
  const region = $('#toast');
  region.parentElement.classList.remove('show', 'error');
  region.textContent = '';
}

function toastError(err) {
  toast(err instanceof ApiError ? err.message : String(err), { error: true });
}

// ----- focus kept across re-renders -------------------------------------------------------

/** A selector finding the focused action button again after its row was rebuilt. */
function focusSelector() {
  const active = document.activeElement;
  if (!active || !active.dataset || !active.dataset.action || !active.parentElement) return null;
  const holder = active.parentElement.closest('[data-app], [data-promotion], [data-revision]');
  if (!holder) return null;
  const keys = ['data-app', 'data-target', 'data-promotion', 'data-revision']
    .filter((name) => holder.hasAttribute(name))
    .map((name) => `[${name}="${CSS.escape(holder.getAttribute(name))}"]`)
    .join('');
  return `${holder.localName}${keys} [data-action="${CSS.escape(active.dataset.action)}"]`;
}

/** Focus `selector` unless focus already rests on something visible (`force`: regardless). */
function refocus(selector, force = false) {
  if (!selector) return;
  const active = document.activeElement;
  // Focus left in a closed dialog or a hidden panel has no boxes: it counts as lost.
  if (!force && active && active !== document.body && active.isConnected && active.getClientRects().length) return;
  const target = document.querySelector(selector);
  if (target && !target.disabled) target.focus();
}

/** Run a re-render; if it removed the focused button, focus its replacement. */
function keepingFocus(render) {
  const selector = focusSelector();
  render();
  refocus(selector);
}

// ----- permissions --------------------------------------------------------------------------

const NEEDS = {
  deploy: 'needs the right to patch deployments.alecton.dev',
  approve: 'needs the right to patch promotions.alecton.dev',
};

function guard(button, right) {
  if (state.can[right] === false) {
    button.disabled = true;
    button.title = NEEDS[right];
  }
  return button;
}

async function loadWhoami() {
  try {
    const me = await api('GET', '/v1/whoami');
    state.can = { ...state.can, ...(me.can || {}) };
    $('#whoami').textContent = `${dash(me.user)} (${dash(me.namespace)})`;
    $('#whoami').title = (me.groups || []).length ? `groups: ${me.groups.join(', ')}` : '';
    $('#namespace').placeholder = me.namespace || 'default';
  } catch (err) {
    $('#whoami').textContent = 'unknown user';
    toastError(err);
  }
}

// ----- overview ----------------------------------------------------------------------------

async function loadOverview() {
  const seq = ++state.overviewSeq;
  let data;
  try {
    data = await api('GET', '/v1/overview');
  } catch (err) {
    if (seq !== state.overviewSeq) return;
    toastError(err);
    // Nothing shown for this namespace yet: say why in place of the table.
    if (state.shownNs !== state.ns) showPlaceholders(`Could not load: ${err.message}`);
    return;
  }
  if (seq !== state.overviewSeq) return; // a newer request was started meanwhile
  state.shownNs = state.ns;
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
function showPlaceholders(text) {
  state.diffs.clear();
  $('#rows tbody').replaceChildren(placeholderRow(11, text));
  $('#promotions ul').replaceChildren(el('li', { class: 'empty', text }));
  $('#images').tBodies[0].replaceChildren(placeholderRow($('#images').tHead.rows[0].cells.length, text));
}

function placeholderRow(columns, text) {
  return el('tr', { class: 'placeholder' }, el('td', { colSpan: columns, text }));
}

function renderRows(rows) {
  const body = $('#rows tbody');
  if (!rows.length) {
    body.replaceChildren(placeholderRow(11, 'No application is deployed in this namespace.'));
    return;
  }
  body.replaceChildren(...rows.map(rowElement));
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
    { dataset: { app: row.application, target: row.target } },
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
    el('td', { class: 'actions', dataset: { field: 'actions' } },
      guard(el('button', { type: 'button', dataset: { action: 'deploy' }, text: 'Deploy…' }), 'deploy'),
      el('button', { type: 'button', dataset: { action: 'details' }, 'aria-controls': 'details', text: 'History' })),
  );
}

function renderImages(images) {
  const table = $('#images');
  const clusters = [...new Set(images.flatMap((image) => Object.keys(image.clusters || {})))].sort();
  table.tHead.replaceChildren(el('tr', {},
    el('th', { scope: 'col', text: 'Image' }),
    clusters.map((name) => el('th', { scope: 'col', text: name }))));
  if (!images.length) {
    table.tBodies[0].replaceChildren(placeholderRow(1, 'No image runs in this namespace yet.'));
    return;
  }
  table.tBodies[0].replaceChildren(...images.map((image) => el('tr', { dataset: { image: image.image } },
    el('th', { scope: 'row', dataset: { label: 'Image' }, text: image.image }),
    clusters.map((cluster) => {
      const versions = (image.clusters || {})[cluster] || [];
      return el('td', { dataset: { cluster, label: cluster } },
        versions.length
          ? versions.map((v) => el('div', { text: `${v.version} (${(v.targets || []).join(', ')})` }))
          : el('span', { class: 'muted', text: '—' }));
    }))));
}

// ----- promotions --------------------------------------------------------------------------

function renderPromotions(promotions) {
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
    const item = el('li', { dataset: { promotion: promotion.name, app: promotion.application, target: promotion.target, to: promotion.to } },
      el('div', { class: 'promotion-head' },
        el('strong', { text: `${promotion.application} → ${promotion.target}` }),
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

function promotionOf(item) {
  return { name: item.dataset.promotion, application: item.dataset.app, target: item.dataset.target, to: item.dataset.to };
}

/** Show (fetching once) or hide the diff under a promotion. */
async function toggleDiff(item, button) {
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
    const diff = await api('GET', `/v1/diff/${seg(promotion.application)}/${seg(promotion.target)}`, { params: { version: promotion.to } });
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

// ----- dialogs -----------------------------------------------------------------------------

/** showModal, remembering how to find the opener again (re-renders may replace it). */
function openDialog(dialog, focusTarget) {
  dialog.dataset.returnFocus = focusSelector() || '';
  setBusy(dialog, false);
  dialog.showModal();
  focusTarget.focus();
}

function setBusy(dialog, busy) {
  const submit = $('button[type="submit"]', dialog);
  submit.disabled = busy;
  dialog.toggleAttribute('aria-busy', busy);
}

function openDeploy(application, target) {
  const dialog = $('#deploy-dialog');
  const input = $('input[name="version"]', dialog);
  state.pending = { kind: 'deploy', application, target };
  $('#deploy-title').textContent = `Deploy ${application} to ${target}`;
  input.value = '';
  $('#deploy-versions').replaceChildren();
  $('[data-role="versions-hint"]', dialog).textContent = 'Looking up known versions…';
  openDialog(dialog, input);
  loadVersions(state.pending);
}

/** The Row has no logical image name: Application.image gives it, then its Images. */
async function loadVersions(pending) {
  const hint = $('#deploy-dialog [data-role="versions-hint"]');
  try {
    const apps = await api('GET', '/v1/applications', { params: { name: pending.application } });
    const app = (apps.applications || []).find((a) => a.name === pending.application);
    if (!app || !app.image) throw new ApiError('the application names no image', 0);
    const found = await api('GET', '/v1/images', { params: { name: app.image } });
    if (state.pending !== pending) return; // the dialog was closed or reopened meanwhile
    const versions = [...new Set((found.images || []).filter((i) => i.name === app.image).map((i) => i.version))]
      .sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
    $('#deploy-versions').replaceChildren(...versions.map((v) => el('option', { value: v })));
    hint.textContent = versions.length
      ? `Known versions of image ${app.image}: ${versions.slice(0, 8).join(', ')}${versions.length > 8 ? ', …' : ''}`
      : `No version of image ${app.image} is registered yet.`;
  } catch (err) {
    if (state.pending === pending) hint.textContent = `Known versions unavailable: ${err.message}`;
  }
}

async function confirmDeploy(dialog) {
  const { application, target } = state.pending;
  const version = $('input[name="version"]', dialog).value.trim();
  if (!version) return;
  setBusy(dialog, true);
  try {
    await api('POST', '/v1/applications/deploy', { body: { application, target, version } });
    dialog.close();
    toast(`Deploying ${application} ${version} to ${target}…`);
    scheduleRefresh();
  } catch (err) {
    toastError(err); // the dialog stays open so the version can be corrected
  } finally {
    setBusy(dialog, false);
  }
}

function openRollback(revision, version) {
  const { application, target } = state.details;
  state.pending = { kind: 'rollback', application, target, revision };
  const dialog = $('#rollback-dialog');
  $('#rollback-title').textContent = `Roll back ${application} on ${target}`;
  $('[data-role="rollback-text"]', dialog).textContent =
    `Roll ${application} on ${target} back to revision ${revision}${version ? ` (version ${version})` : ''}? ` +
    'Helm makes a new revision with that revision\'s chart and values.';
  openDialog(dialog, $('[data-action="cancel"]', dialog));
}

async function confirmRollback(dialog) {
  const { application, target, revision } = state.pending;
  setBusy(dialog, true);
  try {
    await api('POST', '/v1/applications/rollback', { body: { application, target, version: revision } });
    dialog.close();
    toast(`Rolling ${application} on ${target} back to revision ${revision}…`);
    scheduleRefresh();
  } catch (err) {
    toastError(err);
  } finally {
    setBusy(dialog, false);
  }
}

function openDecision(decision, promotion) {
  state.pending = { kind: decision, ...promotion };
  const dialog = $('#decision-dialog');
  const verb = decision === 'approve' ? 'Approve' : 'Reject';
  $('#decision-title').textContent = `${verb} promotion`;
  $('[data-role="decision-text"]', dialog).textContent =
    `${verb} promoting ${promotion.application} to ${promotion.target}, version ${promotion.to}?`;
  const submit = $('[data-action="confirm-decision"]', dialog);
  submit.textContent = verb;
  submit.dataset.decision = decision;
  submit.classList.toggle('danger', decision === 'reject');
  const comment = $('textarea[name="comment"]', dialog);
  comment.value = '';
  openDialog(dialog, comment);
}

async function confirmDecision(dialog) {
  const { kind, application, target, to } = state.pending;
  const comment = $('textarea[name="comment"]', dialog).value.trim();
  const body = { application, target, version: to };
  if (comment) body.comment = comment;
  setBusy(dialog, true);
  try {
    await api('POST', `/v1/promotions/${kind}`, { body });
    dialog.close();
    toast(`${kind === 'approve' ? 'Approved' : 'Rejected'} ${application} ${to} for ${target}.`);
    scheduleRefresh();
  } catch (err) {
    toastError(err);
  } finally {
    setBusy(dialog, false);
  }
}

function wireDialogs() {
  const confirmers = { 'deploy-dialog': confirmDeploy, 'rollback-dialog': confirmRollback, 'decision-dialog': confirmDecision };
  for (const [id, confirm] of Object.entries(confirmers)) {
    const dialog = document.getElementById(id);
    $('form', dialog).addEventListener('submit', (event) => {
      event.preventDefault(); // the dialog closes only when the server said yes
      if (state.pending) confirm(dialog);
    });
    $('[data-action="cancel"]', dialog).addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      state.pending = null;
      const box = $('#toast').parentElement;
      if (dialog.contains(box)) document.body.append(box);
      refocus(dialog.dataset.returnFocus); // the opener may have been re-rendered meanwhile
    });
  }
}

// ----- details panel -------------------------------------------------------------------------

function openDetails(application, target) {
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

function closeDetails() {
  const previous = state.details;
  state.details = null;
  state.detailsSeq += 1; // drop answers still on their way
  $('#details').hidden = true;
  if (previous) {
    refocus(`tr[data-app="${CSS.escape(previous.application)}"][data-target="${CSS.escape(previous.target)}"] [data-action="details"]`, true);
  }
}

async function loadDetails() {
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

const CAUSES = { deploy: 'deploy', promotion: 'promotion', rollback: 'rollback', 'automatic-rollback': 'automatic rollback', retry: 'retry' };

function corrections(list) {
  if (!list || !list.length) return '—';
  return `${list.length}×, last ${String(list[0].result || '').toLowerCase() || 'unknown'}`;
}

function renderHistory(releases) {
  const body = $('#history tbody');
  if (!releases.length) {
    body.replaceChildren(placeholderRow(10, 'No release yet.'));
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
      cell('version', 'Version', dash(release.version)),
      cell('image', 'Image', dash(release.image)),
      cell('cause', 'Cause', release.cause in CAUSES ? CAUSES[release.cause] : dash(release.cause)),
      cell('healthy', 'Healthy', release.healthy === true ? 'yes' : release.healthy === false ? 'no' : '—'),
      cell('corrections', 'Drift corrections', corrections(release.corrections)),
      cell('updated', 'Updated', localTime(release.updated)),
      cell('description', 'Description', dash(release.description)),
      actions);
  }));
}

// ----- live updates ----------------------------------------------------------------------------

function setLive(text, tone) {
  const live = $('#live');
  live.textContent = text;
  live.className = `live ${tone}`;
}

/** Many changes arrive together (a deploy touches Deployment, Promotion...): fetch once. */
function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => {
    loadOverview();
    loadDetails();
  }, REFRESH_DEBOUNCE_MS);
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
async function connectEvents(missed = false) {
  if (state.events) state.events.abort();
  const controller = new AbortController();
  state.events = controller;
  setLive('connecting…', 'neutral');
  let retryIn = 1000;
  for (;;) {
    try {
      for await (const [event] of serverEvents(apiUrl('/v1/events'), controller.signal)) {
        if (event === 'ready') {
          setLive('live', 'ok');
          retryIn = 1000;
          if (missed) scheduleRefresh(); // changes during the outage came without events
        } else if (event === 'change') scheduleRefresh();
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

// ----- namespace -----------------------------------------------------------------------------

function switchNamespace(ns) {
  state.ns = ns;
  const url = new URL(location.href);
  if (ns) url.searchParams.set('namespace', ns);
  else url.searchParams.delete('namespace');
  history.replaceState(null, '', url.pathname + url.search + url.hash);
  closeDetails();
  showPlaceholders('Loading…');
  loadAll();
}

async function loadAll() {
  connectEvents();
  await loadWhoami(); // before the overview: `can` decides which buttons are enabled
  await loadOverview();
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
  else if (action === 'close-details') closeDetails();
  else if (action === 'rollback' && state.details) openRollback(Number(button.dataset.revision), button.dataset.version);
  else if ((action === 'approve' || action === 'reject') && item) openDecision(action, promotionOf(item));
  else if (action === 'diff' && item) toggleDiff(item, button);
  else if (action === 'dismiss-toast') hideToast();
}

function start() {
  takeTokenFromUrl();
  $('#namespace').value = state.ns;
  $('#namespace-form').addEventListener('submit', (event) => {
    event.preventDefault();
    switchNamespace($('#namespace').value.trim());
  });
  document.addEventListener('click', onClick);
  wireDialogs();
  setInterval(refreshAges, AGE_TICK_MS);
  loadAll();
}

start();
