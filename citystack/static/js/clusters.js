// A clusters result on the map: points coloured by cluster on a canvas, hulls
// around them, and its legend.

import {CATEGORICAL, NOISE, REST, clusterColours} from './colours.js';
import {countOf} from './format.js';
import {CanvasLayer, discs} from './layers.js';
import {swatchLegend} from './legend.js';

export const ClustersLayer = CanvasLayer.extend({
  setResult(result) {
    const {lon, lat, label} = result.points;
    this.places = this.projectAll(lon.length, (i) => [lon[i], lat[i]]);
    this.labels = label;
    this.colour = clusterColours(result.clusters || []);
    this.hulls = (result.clusters || []).map((c) => ({
      label: c.label,
      ring: (c.hull || []).map(([x, y]) => this.project0(x, y)),
    }));
    return this.redraw();
  },

  draw(ctx, size, t) {
    if (!this.places) return;
    const r = Math.max(1.5, Math.min(5, 1.5 + (t.zoom - 13) * 0.8));
    // points, one path per colour; noise first, underneath
    const groups = d3.group(d3.range(this.places.px.length), (i) => this.labels[i]);
    const keys = [...groups.keys()].sort((a, b) => a - b);
    for (const key of keys) {
      ctx.beginPath();
      discs(ctx, groups.get(key), this.places, t, size, r);
      ctx.globalAlpha = key < 0 ? 0.45 : 0.9;
      ctx.fillStyle = this.colour(key);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    for (const hull of this.hulls) {
      if (hull.ring.length < 3) continue;
      ctx.beginPath();
      hull.ring.forEach((p, k) => {
        if (k) ctx.lineTo(t.x(p.x), t.y(p.y));
        else ctx.moveTo(t.x(p.x), t.y(p.y));
      });
      ctx.closePath();
      const colour = d3.color(this.colour(hull.label));
      colour.opacity = 0.12;
      ctx.fillStyle = colour.formatRgb();
      ctx.fill();
      ctx.lineWidth = 2;
      ctx.strokeStyle = this.colour(hull.label);
      ctx.stroke();
    }
  },
});

// One entry per colour: the largest clusters in the palette's colours, the rest together, then noise.
export function clustersLegend(target, result) {
  const clusters = [...(result.clusters || [])].sort((a, b) => b.size - a.size || a.label - b.label);
  const colour = clusterColours(clusters);
  const noise = result.points.label.filter((l) => l < 0).length;
  const shown = clusters.slice(0, CATEGORICAL.length);
  const items = shown.map((c) => [colour(c.label), 'cluster ' + c.label + ': ' + countOf(c.size, 'point')]);
  const rest = clusters.slice(CATEGORICAL.length);
  if (rest.length) {
    items.push([REST, countOf(rest.length, 'smaller cluster') + ': ' + countOf(d3.sum(rest, (c) => c.size), 'point')]);
  }
  if (noise) items.push([NOISE, 'noise: ' + countOf(noise, 'point')]);
  swatchLegend(target, {
    title: 'Clusters',
    note: countOf(clusters.length, 'cluster') + (result.method ? ' (' + result.method + ')' : ''),
    items,
    single: true,
    data: {kind: 'clusters'},
  });
}
