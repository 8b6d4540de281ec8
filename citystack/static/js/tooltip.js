// A tooltip that follows the pointer. Data goes in as text only.

export class Tooltip {
  constructor(el) {
    this.el = el;
  }

  // title: text; rows: [[label, value], ...]; x, y: client pixels.
  show(x, y, title, rows) {
    const el = this.el;
    el.replaceChildren();
    if (title) {
      const head = document.createElement('div');
      head.className = 'tooltip-title';
      head.textContent = title;
      el.append(head);
    }
    if (rows.length) {
      const list = document.createElement('dl');
      for (const [label, value] of rows) {
        const dt = document.createElement('dt');
        const dd = document.createElement('dd');
        dt.textContent = label;
        dd.textContent = value;
        list.append(dt, dd);
      }
      el.append(list);
    }
    el.hidden = false;
    const pad = 14;
    const box = el.getBoundingClientRect();
    const left = x + pad + box.width > window.innerWidth ? x - pad - box.width : x + pad;
    const top = y + pad + box.height > window.innerHeight ? y - pad - box.height : y + pad;
    el.style.left = Math.max(4, left) + 'px';
    el.style.top = Math.max(4, top) + 'px';
  }

  hide() {
    this.el.hidden = true;
  }
}
