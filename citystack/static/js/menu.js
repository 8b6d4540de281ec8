// The menu's data section: layer, colour field and scale, time filter, update
// controls, the count of points shown, and the toggle that folds the menu on small
// screens. It reports what the user chose to its handlers and shows what it is told.

import {byId, el, input, option} from './dom.js';
import {SCALES, colourFields} from './fields.js';
import {formatCount, noun} from './format.js';

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

export class Menu {
  // handlers: {layer(name), colour({field, scale}), resetScale(), update(), time(params)}
  constructor(handlers) {
    this.panel = byId('panel');
    this.layerSelect = byId('layer');
    this.colourSelect = byId('colour');
    this.scaleSelect = byId('colour-scale');
    this.moveBox = byId('update-on-move');
    this.timeBox = byId('time-filter');
    this.kinds = new Map();
    this._toggle();
    this._timeFilter(() => handlers.time(this.timeParams()));
    this.layerSelect.addEventListener('change', () => handlers.layer(this.layerSelect.value));
    this.colourSelect.addEventListener('change', () => {
      this._scales(this.colourSelect.value, '');
      handlers.colour(this.colour());
    });
    this.scaleSelect.addEventListener('change', () => handlers.colour(this.colour()));
    byId('reset-scale').addEventListener('click', () => handlers.resetScale());
    byId('update').addEventListener('click', () => handlers.update());
  }

  // Fold the menu (on small screens, so that the map shows).
  fold() {
    this._set(false);
  }

  _toggle() {
    const button = byId('menu-toggle');
    const set = (this._set = (open) => {
      this.panel.classList.toggle('collapsed', !open);
      button.setAttribute('aria-expanded', String(open));
      button.querySelector('.toggle-text').textContent = open ? 'Hide' : 'Menu';
      button.title = open ? 'Hide the menu' : 'Show the menu';
    });
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

  // Show this layer: its name, the fields to colour by (`wanted` {field, scale} if it can), the time
  // filter for layers with a time. Returns what that chooses: {colour: {field, scale}, time}.
  setLayer(layer, wanted) {
    this.layerSelect.value = layer.name;
    const fields = colourFields(layer);
    this.kinds = new Map(fields.map((f) => [f.name, f.kind]));
    const options = fields.map((f) => option(f.name, f.name));
    this.colourSelect.replaceChildren(option('', fields.length ? '(one colour)' : '(no fields to colour by)'), ...options);
    this.colourSelect.value = this.kinds.has(wanted.field) ? wanted.field : '';
    this.colourSelect.disabled = !fields.length;
    this._scales(this.colourSelect.value, wanted.scale);
    this.timeBox.hidden = !(layer.time || layer.kind === 'checkins');
    this.setTime({});
    return {colour: this.colour(), time: this.timeParams()};
  }

  // The scales of the field's kind, `wanted` if it is one of them.
  _scales(field, wanted) {
    const scales = SCALES[this.kinds.get(field)] || [];
    this.scaleSelect.replaceChildren(...scales.map(([value, text]) => option(value, text)));
    if (scales.some(([value]) => value === wanted)) this.scaleSelect.value = wanted;
    byId('scale-control').hidden = scales.length < 2;
    // colours that keep their meaning as the map moves can be reset to the view's
    byId('reset-scale').hidden = !['number', 'date', 'time'].includes(this.kinds.get(field));
    byId('reset-scale').parentElement.hidden = scales.length < 2 && byId('reset-scale').hidden;
  }

  // {field, scale} chosen.
  colour() {
    return {field: this.colourSelect.value, scale: this.scaleSelect.value || ''};
  }

  // Show days and hours ({days: 'Mon,Tue' or '0,1', hours: '8-17'}); what is not given: all.
  setTime({days, hours}) {
    const names = (days || '').split(',').filter(Boolean).map((d) => (/^[0-6]$/.test(d) ? DAYS[Number(d)] : d.slice(0, 3).toLowerCase()));
    for (const box of this.timeBox.querySelectorAll('input[name=day]')) {
      box.checked = !names.length || names.includes(box.value) || names.includes(box.value.toLowerCase());
    }
    const [from, to] = (hours || '0-23').split('-');
    byId('hour-from').value = String(Number(from) % 24);
    byId('hour-to').value = String(Number(to === undefined ? from : to) % 24);
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
