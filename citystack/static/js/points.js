// The points layer: the points of the view on a canvas, coloured by a field,
// or the bins of the view when it holds too many points; answers hit tests.

import {BUCKETS, MISSING, palette} from './colours.js';
import {CanvasLayer, discs} from './layers.js';

export function pointRadius(zoom) {
  return Math.max(1.5, Math.min(6, 2 + (zoom - 13) * 0.9));
}

export const PointsLayer = CanvasLayer.extend({
  initialize(options) {
    L.setOptions(this, options);
    this.clear();
  },

  clear() {
    this.mode = 'empty';
    this.points = null;
    this.bins = null;
    this.scale = null;
    this._tree = null;
    this._drawn = [];
    return this.redraw();
  },

  // features: GeoJSON Point features; field: the property that sets the colour; paint(values): a
  // colouring of those values (colourby.js) or null (one colour).
  setPoints(features, field, paint) {
    const n = features.length;
    const {px, py} = this.projectAll(n, (i) => features[i].geometry.coordinates);
    const values = features.map((f) => (field ? f.properties[field] : null));
    const scale = field && paint ? paint(values) : null;
    const colours = scale ? scale.colours : [palette[BUCKETS - 1]];
    // Group by colour so that each colour is one path; high values are drawn last, on top.
    const groups = Array.from({length: colours.length + 1}, () => []);
    for (let i = 0; i < n; i++) groups[(scale ? scale.index(values[i]) : 0) + 1].push(i);
    this.mode = 'points';
    this.points = {features, px, py, values, groups, colours, field};
    this.bins = null;
    this.scale = scale;
    return this.redraw();
  },

  // collection: the bins API's FeatureCollection; field: the field whose mean sets the colour ('' for
  // the count); paint(values): the colouring of the cells' values.
  setBins(collection, field, paint) {
    const cells = collection.features.map((f) => {
      const ring = f.geometry.coordinates[0];
      const a = this.project0(ring[0][0], ring[0][1]);
      const b = this.project0(ring[2][0], ring[2][1]);
      const value = field ? f.properties.mean : f.properties.count;
      return {x0: a.x, y0: b.y, x1: b.x, y1: a.y, value, props: f.properties};
    });
    this.mode = 'bins';
    this.points = null;
    this.bins = {cells, field, grid: collection.grid, total: collection.total};
    this.scale = paint(cells.map((c) => c.value));
    return this.redraw();
  },

  draw(ctx, size, t) {
    this._drawn = [];
    this._tree = null;
    if (this.mode === 'points') this._drawPoints(ctx, size, t);
    else if (this.mode === 'bins') this._drawBins(ctx, size, t);
    this.fire('drawn', {mode: this.mode, count: this._drawn.length});
  },

  _drawPoints(ctx, size, t) {
    const {px, py, groups, colours} = this.points;
    const r = (this._radius = pointRadius(t.zoom));
    const drawn = this._drawn;
    const xs = (this._xs = new Float32Array(px.length));
    const ys = (this._ys = new Float32Array(px.length));
    const keep = (i, x, y) => {
      xs[i] = x;
      ys[i] = y;
      drawn.push(i);
    };
    ctx.globalAlpha = 0.9;
    groups.forEach((group, g) => {
      if (!group.length) return;
      ctx.beginPath();
      discs(ctx, group, {px, py}, t, size, r, keep);
      ctx.fillStyle = g === 0 ? MISSING : colours[g - 1];
      ctx.fill();
      if (r >= 3.5) {
        ctx.lineWidth = 0.6;
        ctx.strokeStyle = 'rgba(20, 24, 31, 0.55)';
        ctx.stroke();
      }
    });
    ctx.globalAlpha = 1;
    const order = (this._order = new Int32Array(px.length));
    drawn.forEach((i, k) => (order[i] = k));
    this._tree = d3.quadtree().x((i) => xs[i]).y((i) => ys[i]).addAll(drawn);
  },

  _drawBins(ctx, size, t) {
    const gap = (c) => ((c.x1 - c.x0) * t.scale > 8 ? 0.5 : 0);
    ctx.globalAlpha = 0.82;
    for (const c of this.bins.cells) {
      c.box = null;
      const [x0, x1, y0, y1] = [t.x(c.x0), t.x(c.x1), t.y(c.y0), t.y(c.y1)];
      if (x1 < 0 || y1 < 0 || x0 > size.x || y0 > size.y) continue;
      const g = gap(c);
      c.box = [x0, y0, x1, y1];
      const k = this.scale ? this.scale.index(c.value) : -1;
      ctx.fillStyle = k < 0 ? MISSING : this.scale.colours[k];
      ctx.fillRect(x0 + g, y0 + g, x1 - x0 - 2 * g, y1 - y0 - 2 * g);
    }
    ctx.globalAlpha = 1;
  },

  // What is under a container point: {point: i} or {cell}, or null.
  hit(p) {
    if (this.mode === 'points' && this._tree) {
      const i = this._topmost(p) ?? this._tree.find(p.x, p.y, this._radius + 3);
      return i === undefined ? null : {point: i, feature: this.points.features[i], x: this._xs[i], y: this._ys[i]};
    }
    if (this.mode === 'bins') {
      for (const c of this.bins.cells) {
        const b = c.box;
        if (b && p.x >= b[0] && p.x < b[2] && p.y >= b[1] && p.y < b[3]) return {cell: c};
      }
    }
    return null;
  },

  // Of the discs under p, the one drawn last (the one you see); undefined when none.
  _topmost(p) {
    const r = this._radius;
    const xs = this._xs;
    const ys = this._ys;
    const order = this._order;
    let best;
    this._tree.visit((node, x0, y0, x1, y1) => {
      if (!node.length) {
        do {
          const i = node.data;
          if ((xs[i] - p.x) ** 2 + (ys[i] - p.y) ** 2 <= r * r && (best === undefined || order[i] > order[best])) best = i;
        } while ((node = node.next));
      }
      return x0 > p.x + r || x1 < p.x - r || y0 > p.y + r || y1 < p.y - r;
    });
    return best;
  },

  // The drawn points, in container pixels: [{index, x, y, feature}].
  drawnPoints() {
    if (this.mode !== 'points') return [];
    return this._drawn.map((i) => ({index: i, x: this._xs[i], y: this._ys[i], feature: this.points.features[i]}));
  },

  count() {
    return this.mode === 'points' ? this._drawn.length : 0;
  },
});
