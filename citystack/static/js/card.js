// The detail card of a pinned point: every field of the point, as text, with a close button.

import {el, fill} from './dom.js';
import {valueText} from './fields.js';

export class Card {
  // onHide(): the card was closed
  constructor(node, onHide = () => {}) {
    this.node = node;
    this.feature = null;
    this.onHide = onHide;
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.feature) this.hide();
    });
  }

  // feature: {id, properties}; layer: its description (the fields' order); nameField: the title's field;
  // note: what is still coming ('loading every field…'), or ''.
  show(feature, layer, nameField, note = '') {
    this.feature = feature;
    const props = feature.properties || {};
    const named = nameField && props[nameField] !== null && props[nameField] !== undefined;
    const close = el('button', 'card-close', '×');
    close.type = 'button';
    close.title = 'Close';
    close.setAttribute('aria-label', 'Close the detail card');
    close.addEventListener('click', () => this.hide());
    const head = el('div', 'card-head');
    head.append(el('div', 'card-title', named ? String(props[nameField]) : 'feature ' + feature.id), close);
    const list = el('dl', 'card-fields');
    const names = layer.fields.map((f) => f.name).filter((n) => n in props);
    for (const name of [...names, ...Object.keys(props).filter((k) => !names.includes(k))]) {
      list.append(el('dt', '', name), el('dd', '', valueText(layer, name, props[name])));
    }
    list.append(el('dt', 'card-id', 'feature id'), el('dd', 'card-id', String(feature.id)));
    fill(this.node, head, ...(note ? [el('div', 'card-note', note)] : []), list);
    this.node.dataset.id = String(feature.id);
    this.node.dataset.complete = note ? '0' : '1';
  }

  hide() {
    const shown = this.feature !== null;
    this.feature = null;
    this.node.hidden = true;
    delete this.node.dataset.id;
    if (shown) this.onHide();
  }
}

