// Small DOM helpers. No innerHTML anywhere: el() puts every string in as a text node or
// textContent, so server data holding <, & or quotes is shown, never parsed.

export const $ = (selector, root = document) => root.querySelector(selector);

/** createElement with attributes/properties and children (strings become text nodes). */
export function el(tag, props = {}, ...children) {
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
export function cell(field, label, ...children) {
  return el('td', { dataset: { field, label } }, ...children);
}

export function placeholderRow(columns, text) {
  return el('tr', { class: 'placeholder' }, el('td', { colSpan: columns, text }));
}

export const dash = (value) => (value === undefined || value === null || value === '' ? '—' : String(value));

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
export function ageElement(timestamp) {
  const node = el('time', { class: 'age', text: age(timestamp) });
  if (timestamp) {
    node.dateTime = timestamp;
    node.title = new Date(timestamp).toLocaleString();
  }
  return node;
}

export function refreshAges() {
  for (const node of document.querySelectorAll('time.age[datetime]')) node.textContent = age(node.dateTime);
}

export function localTime(timestamp) {
  if (!timestamp || Number.isNaN(Date.parse(timestamp))) return dash(timestamp);
  return el('time', { dateTime: timestamp, title: timestamp, text: new Date(timestamp).toLocaleString() });
}

export const PHASE_TONE = {
  Deployed: 'ok', Healthy: 'ok', Applied: 'ok', Approved: 'ok',
  Failed: 'bad', Conflict: 'bad', Unhealthy: 'bad', Rejected: 'bad',
  RolledBack: 'warn', RollingBack: 'warn', Degraded: 'warn', Superseded: 'neutral',
  Verifying: 'info', Deploying: 'info', Progressing: 'info',
};

export function badge(text) {
  return el('span', { class: `badge tone-${PHASE_TONE[text] || 'neutral'}`, text: dash(text) });
}

/** The commit an Image was built from (its `source`): the short SHA, a link when the Image
 * records an http(s) URL (the CRD allows nothing else; checked again so no other scheme
 * ever becomes a link), with the repository and commit time in the title. */
export function commitLink(source) {
  if (!source || !source.revision) return null;
  const title = [source.repository, source.revision, source.committedAt].filter(Boolean).join(' · ');
  const short = String(source.revision).slice(0, 7);
  const safe = /^https?:\/\//i.test(String(source.url || ''));
  return el(safe ? 'a' : 'span', {
    class: 'commit', href: safe ? source.url : null, rel: safe ? 'noopener noreferrer' : null,
    target: safe ? '_blank' : null, title, text: short, dataset: { field: 'commit' },
  });
}
