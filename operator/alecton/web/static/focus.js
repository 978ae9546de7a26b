// Focus kept across re-renders: rows and lists are rebuilt, the focused button with them.

/** A selector finding the focused action button again after its row was rebuilt. */
export function focusSelector() {
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
export function refocus(selector, force = false) {
  if (!selector) return;
  const active = document.activeElement;
  // Focus left in a closed dialog or a hidden panel has no boxes: it counts as lost.
  if (!force && active && active !== document.body && active.isConnected && active.getClientRects().length) return;
  const target = document.querySelector(selector);
  if (target && !target.disabled) target.focus();
}

/** Run a re-render; if it removed the focused button, focus its replacement. */
export function keepingFocus(render) {
  const selector = focusSelector();
  render();
  refocus(selector);
}
