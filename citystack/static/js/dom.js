// DOM helpers. Data is always shown as text (textContent, text nodes), never parsed as HTML.

export const byId = (id) => document.getElementById(id);

// <tag class="className">text</tag>; no text when it is undefined or null.
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

export function option(value, text) {
  const node = el('option', '', text);
  node.value = value;
  return node;
}

// <input type="..."> with properties (id, name, value, checked, min, ...).
export function input(type, props = {}) {
  return Object.assign(el('input'), {type}, props);
}

// The <label> of a control that has an id.
export function labelFor(control, text) {
  const node = el('label', '', text);
  node.htmlFor = control.id;
  return node;
}

// Show these children (nodes or strings, shown as text) in node, and nothing else.
export function fill(node, ...children) {
  node.replaceChildren(...children);
  node.hidden = false;
}

// Empty node and hide it.
export function clear(node) {
  node.replaceChildren();
  node.hidden = true;
}
