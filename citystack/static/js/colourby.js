// Colour by any field: from the layer, the state's colour {field, scale, domain}
// and the values in view, a colouring {colours, index(value), domain, legend}:
// index gives a value's colour in `colours` (-1: missing). The domain is what
// the colours mean (quantile breaks, [min, median, max], the listed categories);
// given one, the colouring keeps it, so that colours stay comparable as the view moves.

import {BUCKETS, CATEGORICAL, OTHER, cyclic, palette, sequential} from './colours.js';
import {colourKind, fieldOf} from './fields.js';
import {formatValue} from './format.js';

const ISO_OFFSET = /([zZ]|[+-]\d\d:?\d\d)$/;

// An ISO date or date-time text as ms (a naive time is read as UTC, as the server keeps it); NaN if not one.
export function timeValue(v) {
  if (typeof v !== 'string' || !v) return NaN;
  let text = v.length > 10 ? v.replace(' ', 'T') : v + 'T00:00:00';
  if (!ISO_OFFSET.test(text)) text += 'Z';
  return Date.parse(text);
}

// The hour of day of an ISO date-time text, or -1.
export function hourOf(v) {
  if (typeof v !== 'string') return -1;
  const m = /^\d{4}-\d\d-\d\d[T ](\d\d)/.exec(v);
  return m ? Number(m[1]) : -1;
}

const isoDate = (ms) => new Date(ms).toISOString().slice(0, 10);

// The kind of colouring of a field and scale: {kind, scale}; the scale falls back to the kind's first.
export function colourMode(layer, colour) {
  const field = fieldOf(layer, colour.field);
  const kind = field ? colourKind(field) : null;
  if (!kind) return {kind: null, scale: ''};
  const scales = {number: ['quantile', 'linear'], time: ['hour', 'date'], date: ['date'], category: ['category']}[kind];
  return {kind, scale: scales.includes(colour.scale) ? colour.scale : scales[0], field};
}

function sequentialColouring({domain, scale, format, title, note, data}) {
  const [min, max] = [domain[0], domain[domain.length - 1]];
  const median = scale === 'quantile' ? domain[Math.floor(domain.length / 2)] : domain[1];
  const index = scale === 'quantile'
    ? (v) => {
      if (!Number.isFinite(v)) return -1;
      if (min === max) return BUCKETS - 1;
      return Math.max(0, Math.min(BUCKETS - 1, d3.bisectRight(domain, v) - 1));
    }
    : (v) => {
      if (!Number.isFinite(v)) return -1;
      if (min === max) return BUCKETS - 1;
      return Math.max(0, Math.min(BUCKETS - 1, Math.round(((v - min) / (max - min)) * (BUCKETS - 1))));
    };
  return {
    colours: palette,
    index,
    domain,
    min,
    max,
    median,
    legend: {type: 'bar', title, note, interpolator: sequential,
      labels: [format(min), 'median ' + format(median), format(max)], data: {...data, min, max}},
  };
}

// A domain from the values: BUCKETS + 1 quantile breaks, or [min, median, max].
function domainOf(values, scale) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!sorted.length) return null;
  if (scale === 'quantile') return d3.range(BUCKETS + 1).map((i) => d3.quantileSorted(sorted, i / BUCKETS));
  return [sorted[0], d3.quantileSorted(sorted, 0.5), sorted[sorted.length - 1]];
}

// Colour by a count (bins of a field that has no mean): quantiles of the view, never kept.
export function countColouring(counts, title = 'points per cell') {
  const domain = domainOf(counts, 'quantile');
  if (!domain) return emptyColouring(title, {});
  return sequentialColouring({domain, scale: 'quantile', format: formatValue, title, note: '', data: {field: ''}});
}

function emptyColouring(title, data) {
  return {colours: [], index: () => -1, domain: null, legend: {type: 'empty', title, note: 'no values in view', data}};
}

// layer; colour: the state's {field, scale, domain}; values: the raw values in view (property values,
// or a bins cell's mean); bins: the values are means per cell.
export function colouring(layer, colour, values, {bins = false} = {}) {
  const {kind, scale, field} = colourMode(layer, colour);
  const name = colour.field;
  const data = {field: name, scale};
  if (!kind) return null;
  const kept = colour.domain && colour.domain.scale === scale ? colour.domain.values : null;
  if (kind === 'category') return categoryColouring(layer, field, kept, data);
  if (scale === 'hour') {
    const colours = d3.range(24).map((h) => cyclic(h / 24));
    return {
      colours,
      index: (v) => hourOf(v),
      domain: null,
      legend: {type: 'bar', title: name, note: 'hour of day', interpolator: cyclic,
        labels: ['00:00', '12:00', '24:00'], data},
    };
  }
  const asNumber = kind === 'number' ? (v) => (typeof v === 'number' ? v : NaN) : timeValue;
  const domain = kept || domainOf(values.map(asNumber), kind === 'number' ? scale : 'linear');
  if (!domain) return emptyColouring(name, data);
  const format = kind === 'number' ? formatValue : isoDate;
  const note = (bins ? 'mean per cell, ' : '') + (kind === 'number' ? (scale === 'quantile' ? 'colour by rank (quantiles)' : 'linear') : 'by date');
  const out = sequentialColouring({domain, scale: kind === 'number' ? scale : 'linear', format, title: name, note, data});
  const index = out.index;
  out.index = (v) => index(asNumber(v));
  out.domain = {scale, values: domain};
  return out;
}

// The listed values of a category field in distinct colours, the others in one.
function categoryColouring(layer, field, kept, data) {
  const top = (field.top || []).filter(([v]) => v !== null && v !== undefined);
  const values = kept || top.slice(0, CATEGORICAL.length).map(([v]) => v);
  const counts = new Map(top.map(([v, n]) => [String(v), n]));
  const position = new Map(values.map((v, i) => [String(v), i]));
  const listed = d3.sum(values, (v) => counts.get(String(v)) || 0);
  const rest = Math.max(0, layer.count - listed);
  const colours = [...CATEGORICAL.slice(0, values.length), OTHER];
  const items = values.map((v, i) => ({colour: colours[i], value: v, text: String(v), count: counts.get(String(v))}));
  if (rest) items.push({colour: OTHER, value: null, text: field.others ? 'other' : '(none)', count: rest});
  return {
    colours,
    index: (v) => (v === null || v === undefined ? -1 : position.get(String(v)) ?? values.length),
    domain: {scale: 'category', values},
    legend: {type: 'categories', title: field.name, note: 'click a value to filter by it', items, data},
  };
}
