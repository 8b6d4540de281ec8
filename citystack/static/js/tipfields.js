// The fields the tooltip shows: a checkbox list of the layer's fields (the file's
// names, as text). At first the name field and up to eight others, ids last.

import {el, input} from './dom.js';
import {isId} from './fields.js';

const FIRST = 8;

export class TipFields {
  // node: the list's container; onChange(): the choice changed
  constructor(node, onChange) {
    this.node = node;
    this.onChange = onChange;
    this.layer = null;
  }

  setLayer(layer, nameField) {
    this.layer = layer;
    const others = layer.fields.filter((f) => f.name !== nameField);
    const order = [...others.filter((f) => !isId(f)), ...others.filter((f) => isId(f))];
    const on = new Set(order.slice(0, FIRST).map((f) => f.name));
    const items = layer.fields.map((f, i) => {
      const box = input('checkbox', {checked: f.name === nameField || on.has(f.name), id: 'tip-field-' + i});
      box.value = f.name;
      box.addEventListener('change', () => this.onChange());
      const label = el('label', 'check');
      label.htmlFor = box.id;
      label.append(box, el('span', 'field-name', f.name));
      return label;
    });
    this.node.replaceChildren(...items);
  }

  // The names ticked, in the layer's order.
  chosen() {
    return [...this.node.querySelectorAll('input:checked')].map((b) => b.value);
  }
}
