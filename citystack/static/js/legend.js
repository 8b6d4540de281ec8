// Legends: a title (a button that folds the legend away), an optional note, then
// a colour bar with labels or a list of swatches. On small screens legends start folded.

import {gradient, sequential} from './colours.js';
import {el} from './dom.js';
import {formatCount} from './format.js';

const small = () => window.matchMedia('(max-width: 640px)').matches;
const seen = new WeakSet();

// What a legend shows, and nothing else; data becomes its dataset (read by the tests and the console).
function show(target, {title, note, data = {}}, ...body) {
  for (const key of Object.keys(target.dataset)) delete target.dataset[key];
  Object.assign(target.dataset, data);
  if (!seen.has(target)) {
    seen.add(target);
    target.classList.toggle('folded', small());
  }
  const head = el('button', 'legend-title', title);
  head.type = 'button';
  head.title = 'Fold or unfold the legend';
  const sync = () => head.setAttribute('aria-expanded', String(!target.classList.contains('folded')));
  head.addEventListener('click', () => {
    target.classList.toggle('folded');
    sync();
  });
  sync();
  const parts = [head, ...(note ? [el('div', 'legend-note', note)] : []), ...body];
  const inner = el('div', 'legend-body');
  inner.append(...parts.slice(1));
  target.replaceChildren(head, inner);
  target.hidden = false;
}

// A gradient and the labels under it: [left, middle, right] texts (middle may be empty).
export function barNodes({labels, interpolator = sequential}) {
  const bar = el('div', 'legend-bar');
  bar.style.background = gradient(interpolator);
  const row = el('div', 'legend-labels');
  labels.forEach((text, i) => row.append(el('span', 'legend-label legend-label-' + ['min', 'mid', 'max'][i], text)));
  return [bar, row];
}

export function barLegend(target, {title, note, labels, interpolator = sequential, data}) {
  show(target, {title, note, data}, ...barNodes({labels, interpolator}));
}

// A list of swatches: items are [colour, text]; single: one a line.
export function swatchLegend(target, {title, note, items, single = false, data}) {
  const list = el('ul', single ? 'swatches single' : 'swatches');
  for (const [colour, text] of items) {
    const swatch = el('span', 'swatch');
    swatch.style.background = colour;
    const item = el('li');
    item.append(swatch, text);
    list.append(item);
  }
  show(target, {title, note, data}, list);
}

// A legend of categories: items [{colour, text, value, count}], one a line with its count; an item with
// a value is a button: onPick(value). active: the values the filter keeps (empty: all).
export function categoryLegend(target, {title, note, items, data, active = [], onPick}) {
  const list = el('ul', 'swatches single categories');
  const on = new Set(active.map(String));
  for (const item of items) {
    const swatch = el('span', 'swatch');
    swatch.style.background = item.colour;
    const text = el('span', 'category-text', item.text);
    const count = el('span', 'category-count', item.count === undefined ? '' : formatCount(item.count));
    const li = el('li');
    li.dataset.value = item.value === null ? '' : String(item.value);
    if (item.count !== undefined) li.dataset.count = item.count;
    if (item.value !== null && onPick) {
      const button = el('button', 'category');
      button.type = 'button';
      button.setAttribute('aria-pressed', String(on.has(String(item.value))));
      button.append(swatch, text, count);
      button.addEventListener('click', () => onPick(item.value));
      li.append(button);
    } else {
      li.append(swatch, text, count);
    }
    if (on.size && !on.has(String(item.value))) li.classList.add('off');
    list.append(li);
  }
  show(target, {title, note, data}, list);
}

// The legend of a colouring (colourby.js); onPick(value) for a category's click.
export function colouringLegend(target, legend, {active, onPick, extra = []} = {}) {
  if (legend.type === 'categories') categoryLegend(target, {...legend, active, onPick});
  else if (legend.type === 'bar') barLegend(target, legend);
  else show(target, legend);
  if (extra.length) target.querySelector('.legend-body').append(...extra);
}
