// The Delivery page: DORA metrics per application and target (GET /v1/dora), with charts
// drawn here as SVG elements (nothing fetched from elsewhere, no markup parsed: every
// string goes in through textContent or setAttribute).

import { api } from './api.js';
import { $, el } from './dom.js';
import { state } from './state.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const PAGES = { applications: ['#applications', '#promotions', '#images-section'], delivery: ['#delivery'] };
let seq = 0; // only the newest answer is rendered

function svg(tag, attrs = {}, text = '') {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text) node.textContent = text;
  return node;
}

/** 45s, 12m, 3.5h, 2.1d; an em dash when there is no figure. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]]) {
    if (seconds >= size) {
      const value = seconds / size;
      return value >= 10 || unit === 'm' ? `${Math.round(value)}${unit}` : `${value.toFixed(1)}${unit}`;
    }
  }
  return `${Math.round(seconds)}s`;
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function percent(rate) {
  return rate === null || rate === undefined ? '—' : `${Math.round(rate * 100)}%`;
}

function tile(label, value, field, note = '') {
  return el('div', { class: 'tile', dataset: { field } },
    el('span', { class: 'tile-label', text: label }),
    el('strong', { class: 'tile-value', text: value }),
    note ? el('span', { class: 'tile-note', text: note }) : null);
}

/** Deploys per day: successes up from the axis, failures stacked on them. */
function dailyChart(daily) {
  const width = 600;
  const height = 140;
  const top = Math.max(1, ...daily.map((d) => d.successes + d.failures));
  const step = width / Math.max(daily.length, 1);
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${height + 26}`, class: 'chart', role: 'img',
    'aria-label': `Deploys per day, at most ${top} a day`,
  });
  chart.append(svg('line', { x1: 0, y1: height, x2: width, y2: height, class: 'axis' }));
  daily.forEach((day, index) => {
    const x = index * step + step * 0.1;
    const barWidth = Math.max(step * 0.8, 1);
    const ok = (day.successes / top) * height;
    const bad = (day.failures / top) * height;
    const group = svg('g', { 'data-date': day.date });
    group.append(svg('title', {}, `${day.date}: ${day.successes} deployed, ${day.failures} failed`));
    if (ok) group.append(svg('rect', { x, y: height - ok, width: barWidth, height: ok, class: 'bar-ok' }));
    if (bad) group.append(svg('rect', { x, y: height - ok - bad, width: barWidth, height: bad, class: 'bar-bad' }));
    chart.append(group);
  });
  chart.append(svg('text', { x: 0, y: height + 22, class: 'chart-label' }, daily.length ? daily[0].date : ''));
  chart.append(svg('text', { x: width, y: height + 22, class: 'chart-label end' },
    daily.length ? daily[daily.length - 1].date : ''));
  return chart;
}

/** Lead time of each version (newest last, at most 12): one bar each, labelled. */
function leadChart(leadTimes) {
  const shown = leadTimes.slice(-12);
  if (!shown.length) return el('p', { class: 'hint', text: 'No lead time yet: no version with a known source commit or Image became healthy in this period.' });
  const row = 30;
  const width = 600;
  const labelWidth = 150;
  const top = Math.max(...shown.map((l) => l.seconds), 1);
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${row * shown.length}`, class: 'chart', role: 'img',
    'aria-label': 'Lead time per version',
  });
  shown.forEach((lead, index) => {
    const y = index * row;
    const length = Math.max(((width - labelWidth - 70) * lead.seconds) / top, 2);
    const group = svg('g', { 'data-version': lead.version });
    group.append(svg('title', {}, `${lead.version}: ${duration(lead.seconds)} from its ${lead.origin === 'commit' ? 'commit' : 'Image'} to healthy (${lead.at})`));
    group.append(svg('text', { x: labelWidth - 8, y: y + 21, class: 'chart-label end' }, lead.version.slice(0, 14)));
    group.append(svg('rect', { x: labelWidth, y: y + 5, width: length, height: row - 10, class: 'bar-lead' }));
    group.append(svg('text', { x: labelWidth + length + 8, y: y + 21, class: 'chart-label' }, duration(lead.seconds)));
    chart.append(group);
  });
  return chart;
}

function card(figure) {
  const lead = figure.leadTimeSeconds;
  const restore = figure.timeToRestoreSeconds;
  const title = `${figure.application} → ${figure.target}`;
  return el('article', { class: 'delivery-card', dataset: { app: figure.application, target: figure.target } },
    el('h3', { text: title }),
    el('div', { class: 'tiles' },
      tile('Deploys per day', String(figure.deploymentFrequencyPerDay), 'frequency',
        `${figure.successfulDeploys} deployed, ${figure.changeFailures} failed`),
      tile('Lead time', duration(lead.median), 'lead-time', `p90 ${duration(lead.p90)} · ${plural(lead.count, 'version')}`),
      tile('Change failure rate', percent(figure.changeFailureRate), 'failure-rate', `of ${figure.deploys} deploys`),
      tile('Time to restore', duration(restore.median), 'restore',
        figure.openIncidentSince ? `failing since ${figure.openIncidentSince}` : plural(restore.count, 'restore'))),
    el('h4', { text: 'Deploys per day' }),
    dailyChart(figure.daily),
    el('h4', { text: 'Lead time per version' }),
    leadChart(figure.leadTimes));
}

export async function loadDelivery() {
  const mine = ++seq;
  const box = $('#delivery-body');
  const since = $('#delivery-since').value;
  box.setAttribute('aria-busy', 'true');
  let report;
  try {
    report = await api('GET', '/v1/dora', { params: { since } });
  } catch (err) {
    if (mine !== seq) return;
    box.replaceChildren(el('p', { class: 'hint', role: 'alert', text: err.status === 404 ? `${err.message}` : `Cannot load the delivery metrics: ${err.message}` }));
    box.removeAttribute('aria-busy');
    return;
  }
  if (mine !== seq) return;
  const cards = report.figures.map(card);
  box.replaceChildren(...(cards.length ? cards : [el('p', { class: 'hint', text: `No release records in ${report.namespace || state.ns || 'this namespace'} for this period.` })]));
  box.removeAttribute('aria-busy');
}

/** Applications (the overview) or Delivery; the choice is kept in the URL (?page=). */
export function showPage(page, { load = true } = {}) {
  const chosen = PAGES[page] ? page : 'applications';
  for (const [name, selectors] of Object.entries(PAGES)) {
    for (const selector of selectors) {
      const node = $(selector);
      if (node) node.hidden = name !== chosen;
    }
  }
  if (chosen !== 'applications') $('#details').hidden = true;
  for (const button of document.querySelectorAll('button[data-page]')) {
    button.setAttribute('aria-pressed', String(button.dataset.page === chosen));
  }
  const url = new URL(location.href);
  if (chosen === 'applications') url.searchParams.delete('page');
  else url.searchParams.set('page', chosen);
  history.replaceState(null, '', url.pathname + url.search + url.hash);
  if (chosen === 'delivery' && load) loadDelivery();
}

export function currentPage() {
  return new URLSearchParams(location.search).get('page') || 'applications';
}
