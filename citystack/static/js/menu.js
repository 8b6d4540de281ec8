// The menu's data section: layer, colour field, time filter, update controls,
// the count of points shown, and the toggle that folds the menu on small screens.
// It reports what the user chose to its handlers and shows what it is told.

import {byId, el, input, option} from './dom.js';
import {fieldNames} from './fields.js';
import {formatCount, noun} from './format.js';

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

export class Menu {
  // handlers: {layer(name), colour(field), update(), time(params)}
  constructor(handlers) {
    this.panel = byId('panel');
    this.layerSelect = byId('layer');
    this.colourSelect = byId('colour');
    this.moveBox = byId('update-on-move');
    this.timeBox = byId('time-filter');
    this._toggle();
    this._timeFilter(() => handlers.time(this.timeParams()));
    this.layerSelect.addEventListener('change', () => handlers.layer(this.layerSelect.value));
    this.colourSelect.addEventListener('change', () => handlers.colour(this.colourSelect.value));
    byId('update').addEventListener('click', () => handlers.update());
  }

  _toggle() {
    const button = byId('menu-toggle');
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
    const days = byId('days');
    for (const day of DAYS) {
      const label = el('label', 'day');
      label.append(input('checkbox', {name: 'day', value: day, checked: true, id: 'day-' + day.toLowerCase()}),
        el('span', '', day));
      days.append(label);
    }
    for (const id of ['hour-from', 'hour-to']) {
      const select = byId(id);
      for (let h = 0; h < 24; h++) select.append(option(String(h), String(h).padStart(2, '0') + ':00'));
    }
    byId('hour-to').value = '23';
    this.timeBox.addEventListener('change', (e) => {
      // At least one day stays on: an empty filter would show nothing.
      if (e.target.name === 'day' && !days.querySelector('input:checked')) e.target.checked = true;
      onChange();
    });
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

  // Show this layer: its name, its numeric fields to colour by (`wanted` if it
  // has it), the time filter for check-ins. Returns what that chooses: {field, time}.
  setLayer(layer, wanted) {
    this.layerSelect.value = layer.name;
    const names = fieldNames(layer);
    if (names.length) this.colourSelect.replaceChildren(...names.map((name) => option(name, name)));
    else this.colourSelect.replaceChildren(option('', '(no numeric fields)'));
    this.colourSelect.value = names.includes(wanted) ? wanted : names[0] || '';
    this.colourSelect.disabled = !names.length;
    this.timeBox.hidden = layer.kind !== 'checkins';
    return {field: this.colourSelect.value, time: this.timeParams()};
  }

  // {days: 'Mon,Tue', hours: '8-17'} for check-in layers; only what narrows the view.
  timeParams() {
    if (this.timeBox.hidden) return {};
    const out = {};
    const boxes = [...this.timeBox.querySelectorAll('input[name=day]')];
    const on = boxes.filter((b) => b.checked).map((b) => b.value);
    if (on.length && on.length < boxes.length) out.days = on.join(',');
    const from = byId('hour-from').value;
    const to = byId('hour-to').value;
    if (!(from === '0' && to === '23')) out.hours = from + '-' + to;
    return out;
  }

  // n points shown; note: what else to say, in brackets.
  setCount(n, note) {
    byId('count').textContent = formatCount(n);
    byId('count-label').textContent = noun(n, 'point') + ' shown' + (note ? ' (' + note + ')' : '');
  }
}
