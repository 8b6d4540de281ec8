// Colour scales: a numeric field by rank, grid values, clusters and categories.
//
// Values are coloured by their rank (a sequential quantile scale), so that a few
// very high prices do not squeeze everything else into one colour; the legend
// says so with its min, median and max labels.

export const BUCKETS = 48;
export const sequential = d3.interpolateViridis;
export const palette = d3.range(BUCKETS).map((i) => sequential(i / (BUCKETS - 1)));
export const MISSING = '#9aa3ad';
export const NOISE = '#8c96a0';

// A quantile colour scale over `values` (null, NaN and non-numbers ignored), or null when there are none.
export function quantileScale(values) {
  const finite = values.filter(Number.isFinite);
  if (!finite.length) return null;
  const rank = d3.scaleSequentialQuantile((t) => t).domain(finite);
  const sorted = rank.domain();
  const [min, max] = [sorted[0], sorted[sorted.length - 1]];
  const bucket = (v) => {
    if (!Number.isFinite(v)) return -1;
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

const GRID = {
  heatmap: (t) => d3.interpolateInferno(0.2 + 0.8 * t),
  interpolate: (t) => d3.interpolateRdYlBu(1 - t),
};

// The interpolator of an analysis's grid of 0..1 values.
export function gridColour(analysis) {
  return GRID[analysis] || sequential;
}

// A cluster's colour; noise (label < 0) is grey.
export function clusterColour(label) {
  return label < 0 ? NOISE : d3.schemeTableau10[label % 10];
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
