// The menu's data section: layer, colour field, time filter, update controls,
// the count of points shown, and the toggle that folds the menu on small screens.

import {formatCount} from './legend.js';

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const $ = (id) => document.getElementById(id);

export function numericFields(layer) {
  return layer.fields.filter((f) => f.type === 'number');
}

function option(value, text) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  return o;
}

export class Menu {
  // handlers: {layer(name), colour(field), update(), filter()}
  constructor(handlers) {
    this.panel = $('panel');
    this.layerSelect = $('layer');
    this.colourSelect = $('colour');
    this.moveBox = $('update-on-move');
    this.timeBox = $('time-filter');
    this._toggle();
    this._timeFilter(handlers.filter);
    this.layerSelect.addEventListener('change', () => handlers.layer(this.layerSelect.value));
    this.colourSelect.addEventListener('change', () => handlers.colour(this.colourSelect.value));
    $('update').addEventListener('click', () => handlers.update());
  }

  _toggle() {
    const button = $('menu-toggle');
    const set = (open) => {
      this.panel.classList.toggle('collapsed', !open);
      button.setAttribute('aria-expanded', String(open));
      button.querySelector('.toggle-text').textContent = open ? 'Hide' : 'Menu';
      button.title = open ? 'Hide the menu' : 'Show the menu';
    };
    set(!window.matchMedia('(max-width: 640px)').matches);
    button.addEventListener('click', () => set(this.panel.classList.contains('collapsed')));
  }

  _timeFilter(onChange) {
    const days = $('days');
    for (const day of DAYS) {
      const label = document.createElement('label');
      label.className = 'day';
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.value = day;
      box.checked = true;
      box.name = 'day';
      box.id = 'day-' + day.toLowerCase();
      const text = document.createElement('span');
      text.textContent = day;
      label.append(box, text);
      days.append(label);
    }
    for (const id of ['hour-from', 'hour-to']) {
      const select = $(id);
      for (let h = 0; h < 24; h++) select.append(option(String(h), String(h).padStart(2, '0') + ':00'));
    }
    $('hour-to').value = '23';
    this.timeBox.addEventListener('change', (e) => {
      // At least one day stays on: an empty filter would show nothing.
      if (e.target.name === 'day' && !days.querySelector('input:checked')) e.target.checked = true;
      onChange();
    });
  }

  get layer() {
    return this.layerSelect.value;
  }

  get colour() {
    return this.colourSelect.value;
  }

  get updateOnMove() {
    return this.moveBox.checked;
  }

  setLayers(layers, selected) {
    this.layerSelect.replaceChildren(
      ...layers.map((l) => option(l.name, l.name + ' (' + l.kind + ', ' + formatCount(l.count) + ')')),
    );
    this.layerSelect.value = selected;
  }

  // The layer's numeric fields in the colour select; returns the chosen one ('' when none).
  setLayer(layer, wanted) {
    const fields = numericFields(layer);
    if (fields.length) {
      this.colourSelect.replaceChildren(...fields.map((f) => option(f.name, f.name)));
    } else {
      this.colourSelect.replaceChildren(option('', '(no numeric fields)'));
    }
    const names = fields.map((f) => f.name);
    this.colourSelect.value = names.includes(wanted) ? wanted : names[0] || '';
    this.colourSelect.disabled = !fields.length;
    this.timeBox.hidden = layer.kind !== 'checkins';
    return this.colourSelect.value;
  }

  // {days: 'Mon,Tue', hours: '8-17'} for check-in layers; only what narrows the view.
  timeParams() {
    if (this.timeBox.hidden) return {};
    const out = {};
    const boxes = [...this.timeBox.querySelectorAll('input[name=day]')];
    const on = boxes.filter((b) => b.checked).map((b) => b.value);
    if (on.length && on.length < boxes.length) out.days = on.join(',');
    const from = $('hour-from').value;
    const to = $('hour-to').value;
    if (!(from === '0' && to === '23')) out.hours = from + '-' + to;
    return out;
  }

  setCount(n, label) {
    $('count').textContent = formatCount(n);
    $('count-label').textContent = label;
  }
}
