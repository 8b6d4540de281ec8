// A tooltip that follows the pointer. Data goes in as text only.

import {el, fill} from './dom.js';

export class Tooltip {
  constructor(node) {
    this.node = node;
  }

  // x, y: client pixels; title: text; rows: [[label, value], ...] of text.
  show(x, y, {title, rows}) {
    const node = this.node;
    const parts = title ? [el('div', 'tooltip-title', title)] : [];
    if (rows.length) {
      const list = el('dl');
      for (const [label, value] of rows) list.append(el('dt', '', label), el('dd', '', value));
      parts.push(list);
    }
    fill(node, ...parts);
    const pad = 14;
    const box = node.getBoundingClientRect();
    const left = x + pad + box.width > window.innerWidth ? x - pad - box.width : x + pad;
    const top = y + pad + box.height > window.innerHeight ? y - pad - box.height : y + pad;
    node.style.left = Math.max(4, left) + 'px';
    node.style.top = Math.max(4, top) + 'px';
  }

  hide() {
    this.node.hidden = true;
  }
}
