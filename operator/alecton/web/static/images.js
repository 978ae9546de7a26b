// The images table (#images): which version of each image runs on which cluster.

import { $, commitLink, el, placeholderRow } from './dom.js';

export function renderImages(images) {
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
    el('th', { scope: 'row', dataset: { label: 'Image' }, text: image.namespace ? `${image.namespace}/${image.image}` : image.image }),
    clusters.map((cluster) => {
      const versions = (image.clusters || {})[cluster] || [];
      return el('td', { dataset: { cluster, label: cluster } },
        versions.length
          ? versions.map((v) => el('div', {}, `${v.version} (${(v.targets || []).join(', ')})`, v.source ? ' ' : null, commitLink(v.source)))
          : el('span', { class: 'muted', text: '—' }));
    }))));
}
