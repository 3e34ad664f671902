// Tiny DOM helpers: enough to build rows and cards without a framework.

export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from index.html`);
  return node;
}

/**
 * Creates an element. `props` keys: `class`, `text`, `on<event>` handlers,
 * `dataset` (object), anything else becomes an attribute (`true` → empty).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child != null) node.append(child);
  }
  return node;
}

export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/**
 * Keyed reconciliation of a container's children. Rows are created once per
 * key and updated in place, so focus, open selects and busy buttons survive
 * the once-per-second refresh.
 */
export function syncRows(container, items, keyOf, create, update) {
  const existing = new Map();
  for (const row of container.children) existing.set(row.dataset.key, row);

  let previous = null;
  for (const item of items) {
    const key = keyOf(item);
    let row = existing.get(key);
    if (row) existing.delete(key);
    else {
      row = create(item);
      row.dataset.key = key;
    }
    update(row, item);
    const expectedPosition = previous ? previous.nextSibling : container.firstChild;
    if (row !== expectedPosition) container.insertBefore(row, expectedPosition);
    previous = row;
  }
  for (const stale of existing.values()) stale.remove();
}
