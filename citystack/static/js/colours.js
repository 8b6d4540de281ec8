// Colour palettes: sequential (numbers, dates), cyclic (hours), categorical
// (categories, clusters), and the grids of analyses. colourby.js makes the
// colourings of fields from them.

export const BUCKETS = 48;
export const sequential = d3.interpolateViridis;
export const palette = d3.range(BUCKETS).map((i) => sequential(i / (BUCKETS - 1)));
export const MISSING = '#9aa3ad';
export const NOISE = '#8c96a0';

const GRID = {
  heatmap: (t) => d3.interpolateInferno(0.2 + 0.8 * t),
  interpolate: (t) => d3.interpolateRdYlBu(1 - t),
};

// The interpolator of an analysis's grid of 0..1 values.
export function gridColour(analysis) {
  return GRID[analysis] || sequential;
}

// Distinct colours for categories and clusters, none of them grey (grey means noise, missing or other).
export const CATEGORICAL = ['#4e79a7', '#f28e2c', '#e15759', '#76b7b2', '#59a14f', '#edc949', '#af7aa1',
  '#ff9da7', '#9c755f', '#2f4b7c', '#bcbd22', '#17becf'];
export const OTHER = '#d4d8dd';
// A cyclic palette: hour 23 sits next to hour 0.
export const cyclic = d3.interpolateSinebow;

// The colours of a clusters result: Map label -> colour, the largest cluster first in the palette,
// clusters past the palette in one `rest` colour (not grey), noise (label < 0) grey.
export const REST = '#c9a66b';
export function clusterColours(clusters) {
  const order = [...clusters].sort((a, b) => b.size - a.size || a.label - b.label);
  const colours = new Map(order.map((c, i) => [c.label, i < CATEGORICAL.length ? CATEGORICAL[i] : REST]));
  return (label) => (label < 0 ? NOISE : colours.get(label) || REST);
}

// A new scale from categories to colours, in the order they are asked for.
export function categoryScale() {
  return d3.scaleOrdinal(d3.schemeTableau10);
}

// An interpolator as a CSS gradient from left to right, for legend bars.
export function gradient(interpolator) {
  const stops = d3.range(11).map((i) => interpolator(i / 10) + ' ' + i * 10 + '%');
  return 'linear-gradient(to right, ' + stops.join(', ') + ')';
}
