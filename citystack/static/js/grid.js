// A grid result (heatmap, interpolation) on the map: an image anchored to its
// bbox, and its legend.

import {gridColour} from './colours.js';
import {formatValue} from './format.js';
import {barLegend} from './legend.js';

// The raw values behind a grid's 0..1 values (e.g. density), when the result carries them.
function rawGrid(grid) {
  for (const [key, value] of Object.entries(grid)) {
    if (key !== 'values' && Array.isArray(value) && Array.isArray(value[0])) return {key, rows: value};
  }
  return null;
}

function gridImage(grid, colour, alpha) {
  const canvas = document.createElement('canvas');
  canvas.width = grid.nx;
  canvas.height = grid.ny;
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(grid.nx, grid.ny);
  for (let j = 0; j < grid.ny; j++) {
    const row = grid.values[j] || [];
    for (let i = 0; i < grid.nx; i++) {
      const v = row[i];
      if (!Number.isFinite(v)) continue;
      const c = d3.rgb(colour(v));
      const k = 4 * (j * grid.nx + i);
      image.data[k] = c.r;
      image.data[k + 1] = c.g;
      image.data[k + 2] = c.b;
      image.data[k + 3] = Math.round(255 * alpha(v));
    }
  }
  ctx.putImageData(image, 0, 0);
  return canvas;
}

// A Leaflet image overlay of result.grid in `pane`.
export function gridOverlay(result, pane) {
  const g = result.grid;
  // a heatmap fades out where there is little; other grids are evenly translucent
  const alpha = result.analysis === 'heatmap' ? (v) => 0.82 * Math.sqrt(v) : () => 0.62;
  const image = gridImage(g, gridColour(result.analysis), alpha).toDataURL();
  const bounds = [[g.bbox[1], g.bbox[0]], [g.bbox[3], g.bbox[2]]];
  return L.imageOverlay(image, bounds, {pane, className: 'grid-overlay', interactive: false});
}

export function gridLegend(target, result) {
  const raw = rawGrid(result.grid);
  let labels = ['low', '', 'high'];
  let title = result.title || result.analysis || 'grid';
  let note = '';
  if (result.analysis === 'heatmap') {
    title = 'Heatmap: density';
    note = result.weight ? 'weighted by ' + result.weight : '';
  } else if (result.analysis === 'interpolate') {
    title = 'Interpolated ' + (result.field || (result.params && result.params.field) || 'value');
  }
  if (raw) {
    const flat = raw.rows.flat().filter(Number.isFinite);
    if (flat.length) {
      let [lo, hi] = d3.extent(flat);
      let units = result.units || '';
      if (/per m²$/.test(units)) {
        // densities per square metre are tiny numbers: say per km²
        lo *= 1e6;
        hi *= 1e6;
        units = units.replace(/per m²$/, 'per km²');
      }
      if (result.analysis === 'heatmap') lo = 0;
      labels = [formatValue(lo), units, formatValue(hi)];
    }
  }
  barLegend(target, {title, note, labels, interpolator: gridColour(result.analysis), data: {kind: 'grid'}});
}
