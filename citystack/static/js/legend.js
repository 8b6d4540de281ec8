// Legends: a title, an optional note, then a colour bar with labels or a list of swatches.

import {gradient, sequential} from './colours.js';
import {el, fill} from './dom.js';
import {formatValue} from './format.js';

// What a legend shows, and nothing else; data becomes its dataset (read by the tests and the console).
function show(target, {title, note, data = {}}, ...body) {
  for (const key of Object.keys(target.dataset)) delete target.dataset[key];
  Object.assign(target.dataset, data);
  fill(target, el('div', 'legend-title', title), ...(note ? [el('div', 'legend-note', note)] : []), ...body);
}

// A gradient with labels under it: [left, middle, right] texts (middle may be empty).
export function barLegend(target, {title, note, labels, interpolator = sequential, data}) {
  const bar = el('div', 'legend-bar');
  bar.style.background = gradient(interpolator);
  const row = el('div', 'legend-labels');
  labels.forEach((text, i) => row.append(el('span', 'legend-label legend-label-' + ['min', 'mid', 'max'][i], text)));
  show(target, {title, note, data}, bar, row);
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

// The legend of a quantile scale (colours.quantileScale) over a field.
export function scaleLegend(target, {field = '', title, scale, note}) {
  if (!scale) {
    show(target, {title, note: 'no values in view', data: {field}});
    return;
  }
  barLegend(target, {
    title,
    note,
    labels: [formatValue(scale.min), 'median ' + formatValue(scale.median), formatValue(scale.max)],
    data: {field, min: scale.min, max: scale.max},
  });
}
