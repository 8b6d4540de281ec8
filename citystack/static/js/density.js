// The view as a density image from the store (GET /api/layers/{layer}/density, bin
// format): one pixel of the image per screen pixel, shaded on a log scale, with a
// legend. The image is drawn at its own bbox, so the old one moves with the map
// until the new one arrives; a newer request aborts the one before.

import {url} from './http.js';
import {barLegend} from './legend.js';
import {CanvasLayer} from './layers.js';
import {project} from './pointcanvas.js';

export const RAMP = (t) => d3.interpolateInferno(0.15 + 0.85 * t);

// A density answer as {width, height, bbox, stat, dtype, total, max, values}; north row first.
export async function fetchDensity(layer, params, {signal} = {}) {
  const path = '/api/layers/' + encodeURIComponent(layer) + '/density';
  const response = await fetch(url(path, {...params, format: 'bin'}), {signal});
  if (!response.ok) {
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      // not JSON
    }
    throw new Error(((body && body.detail) || response.statusText) + ' (' + response.status + ')');
  }
  const h = (name) => response.headers.get('X-Density-' + name);
  const buffer = await response.arrayBuffer();
  const dtype = h('Dtype');
  return {
    width: +h('Width'),
    height: +h('Height'),
    bbox: h('Bbox').split(',').map(Number),
    stat: h('Stat'),
    dtype,
    total: +h('Total'),
    max: +h('Max'),
    values: dtype === 'float32' ? new Float32Array(buffer) : new Uint32Array(buffer),
  };
}

// The image's pixels as a canvas: counts on a log scale (a statistic: linear from min to
// max), empty pixels transparent. Returns {canvas, min, max}.
export function shade(image) {
  const {width, height, values} = image;
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  const out = ctx.createImageData(width, height);
  const px = new Uint32Array(out.data.buffer);
  const lut = new Uint32Array(256);
  for (let k = 0; k < 256; k++) {
    const c = d3.rgb(RAMP(k / 255));
    const a = Math.round(150 + (105 * k) / 255);
    lut[k] = ((a << 24) | (c.b << 16) | (c.g << 8) | c.r) >>> 0;
  }
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === v && (image.dtype === 'float32' || v > 0)) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  const counts = image.dtype !== 'float32';
  const top = counts ? Math.log1p(max) : max - min || 1;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(v === v) || (counts && v === 0)) continue;
    const t = counts ? Math.log1p(v) / top : (v - min) / top;
    px[i] = lut[Math.max(0, Math.min(255, Math.round(t * 255)))];
  }
  ctx.putImageData(out, 0, 0);
  return {canvas, min, max};
}

// A screen layer showing the density image of the view. show(layer, params) asks for the
// image of the map's view at its size (options.pixel: screen pixels per image pixel, 1 by
// default); fires 'drawn' {total, max, width, height} when one arrives, 'error' {error} when
// it fails, and rejects with an AbortError when a newer request or `signal` cancels it.
export const DensityLayer = CanvasLayer.extend({
  initialize(options) {
    L.setOptions(this, options);
    this.image = null;
    this._controller = null;
  },

  // params: the view's filters (the bbox and size are the map's); signal: aborts this request too.
  async show(layer, params = {}, {signal} = {}) {
    if (this._controller) this._controller.abort();
    const controller = (this._controller = new AbortController());
    if (signal) signal.addEventListener('abort', () => controller.abort(), {once: true});
    const map = this._map;
    const size = map.getSize();
    const b = map.getBounds();
    const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
    const bbox = [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -85, 85),
      clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -85, 85)];
    try {
      const pixel = this.options.pixel || 1; // screen pixels per image pixel
      const width = Math.max(1, Math.ceil(size.x / pixel));
      const height = Math.max(1, Math.ceil(size.y / pixel));
      const image = await fetchDensity(layer, {...params, bbox: bbox.join(','), width, height},
        {signal: controller.signal});
      if (controller !== this._controller) throw new DOMException('superseded by a newer view', 'AbortError');
      this._controller = null;
      this.image = {...image, ...shade(image)};
      this.redraw();
      this.fire('drawn', {total: image.total, max: image.max, width: image.width, height: image.height});
      return this.image;
    } catch (err) {
      // Aborted (by `signal`, or a newer show()): the caller's task ends quietly, nothing is drawn.
      if (err.name !== 'AbortError') this.fire('error', {error: err});
      throw err;
    }
  },

  clear() {
    if (this._controller) this._controller.abort();
    this._controller = null;
    this.image = null;
    return this.redraw();
  },

  // Each row of the image is a band of latitudes: drawn between the band's Mercator
  // edges, so the image lies exactly over the map at any zoom (not stretched linearly).
  draw(ctx, size, t) {
    const image = this.image;
    if (!image) return;
    const [x0, y0, x1, y1] = image.bbox;
    const h = image.height;
    const lats = new Float64Array(h + 1);
    for (let r = 0; r <= h; r++) lats[r] = y1 - ((y1 - y0) * r) / h;
    const {py} = project(new Float64Array(h + 1).fill(x0), lats);
    const {px} = project(new Float64Array([x0, x1]), new Float64Array([y0, y0]));
    const left = t.x(px[0]);
    const right = t.x(px[1]);
    ctx.imageSmoothingEnabled = false;
    for (let r = 0; r < h; r++) {
      const top = t.y(py[r]);
      const bottom = t.y(py[r + 1]);
      if (bottom < 0 || top > size.y) continue;
      ctx.drawImage(image.canvas, 0, r, image.width, 1, left, top, right - left, bottom - top);
    }
  },
});

// A legend for a density image: the ramp and its ends (log scale for counts).
export function densityLegend(element, image) {
  const counts = image.dtype !== 'float32';
  const fmt = d3.format(',.3~s');
  barLegend(element, {
    title: counts ? 'points per pixel' : image.stat + ' per pixel',
    note: counts ? 'log scale, ' + fmt(image.total) + ' points in view' : '',
    labels: [fmt(counts ? 1 : image.min), '', fmt(image.max)],
    interpolator: RAMP,
    data: {density: image.total, max: image.max},
  });
}
