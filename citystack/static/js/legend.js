// Colour scales and their legends.
//
// Values are coloured by their rank (a sequential quantile scale), so that a few
// very high prices do not squeeze everything else into one colour; the legend
// says so with its min, median and max labels.

export const BUCKETS = 48;
export const interpolate = d3.interpolateViridis;
export const palette = d3.range(BUCKETS).map((i) => interpolate(i / (BUCKETS - 1)));
export const MISSING = '#9aa3ad';

// A quantile colour scale over `values` (nulls and NaN ignored), or null when there are none.
export function quantileScale(values) {
  const finite = values.filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  if (!finite.length) return null;
  const rank = d3.scaleSequentialQuantile((t) => t).domain(finite);
  const sorted = rank.domain();
  const [min, max] = [sorted[0], sorted[sorted.length - 1]];
  const bucket = (v) => {
    if (v === null || v === undefined || !Number.isFinite(v)) return -1;
    return min === max ? BUCKETS - 1 : Math.round(rank(v) * (BUCKETS - 1));
  };
  return {
    min,
    max,
    median: d3.quantileSorted(sorted, 0.5),
    bucket,
    colour: (v) => {
      const b = bucket(v);
      return b < 0 ? MISSING : palette[b];
    },
  };
}

export function formatValue(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (Number.isInteger(v)) return d3.format(',')(v);
  if (Math.abs(v) >= 1000) return d3.format(',.0f')(v);
  if (Math.abs(v) >= 1) return d3.format(',.2~f')(v);
  return d3.format('.3~g')(v);
}

export const formatCount = d3.format(',');

function gradient(interpolator) {
  const stops = d3.range(11).map((i) => interpolator(i / 10) + ' ' + i * 10 + '%');
  return 'linear-gradient(to right, ' + stops.join(', ') + ')';
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Fill a legend element: a title, an optional note, a gradient and labels under it.
// labels: [left, middle, right] texts (middle may be empty).
export function renderLegend(target, {title, note, labels, interpolator = interpolate, data = {}}) {
  target.replaceChildren();
  const head = el('div', 'legend-title', title);
  target.append(head);
  if (note) target.append(el('div', 'legend-note', note));
  const bar = el('div', 'legend-bar');
  bar.style.background = gradient(interpolator);
  target.append(bar);
  const row = el('div', 'legend-labels');
  for (const [i, text] of labels.entries()) {
    row.append(el('span', 'legend-label legend-label-' + ['min', 'mid', 'max'][i], text));
  }
  target.append(row);
  for (const key of Object.keys(target.dataset)) delete target.dataset[key];
  Object.assign(target.dataset, data);
  target.hidden = false;
}

// The legend of a quantile scale over a field.
export function scaleLegend(target, {field, title, scale, note}) {
  if (!scale) {
    target.replaceChildren(el('div', 'legend-title', title), el('div', 'legend-note', 'no values in view'));
    target.hidden = false;
    return;
  }
  renderLegend(target, {
    title,
    note,
    labels: [formatValue(scale.min), 'median ' + formatValue(scale.median), formatValue(scale.max)],
    data: {field: field || '', min: scale.min, max: scale.max},
  });
}

export function hideLegend(target) {
  target.replaceChildren();
  target.hidden = true;
}
