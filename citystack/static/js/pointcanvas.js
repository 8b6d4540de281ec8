// Many points drawn as pixels: positions are projected once (Web Mercator, zoom-0
// pixels, as Leaflet's EPSG:3857 does), and each draw writes them straight into an
// ImageData, a small disc per point, with no path or object per point. Half a
// million points draw in tens of milliseconds (bench: test_browser's figure).

import {CanvasLayer} from './layers.js';

const MAX_LATITUDE = 85.0511287798;
const TILE = 256;

// Zoom-0 pixel positions of lon/lat arrays (Float64Arrays), as map.project(latlng, 0) gives.
export function project(lon, lat) {
  const n = lon.length;
  const px = new Float64Array(n);
  const py = new Float64Array(n);
  const d = Math.PI / 180;
  for (let i = 0; i < n; i++) {
    const phi = Math.max(Math.min(MAX_LATITUDE, lat[i]), -MAX_LATITUDE) * d;
    const s = Math.sin(phi);
    px[i] = TILE * (0.5 + (lon[i] * d) / (2 * Math.PI));
    py[i] = TILE * (0.5 - (0.25 / Math.PI) * Math.log((1 + s) / (1 - s)));
  }
  return {px, py};
}

// A CSS colour as the 32-bit pixel an ImageData's Uint32Array view holds (RGBA bytes in memory).
export function packColour(css, alpha = 1) {
  const c = d3.rgb(css);
  const little = new Uint8Array(new Uint32Array([0x11223344]).buffer)[0] === 0x44;
  const a = Math.round(alpha * 255);
  return little ? ((a << 24) | (c.b << 16) | (c.g << 8) | c.r) >>> 0 : ((c.r << 24) | (c.g << 16) | (c.b << 8) | a) >>> 0;
}

// The offsets (dx, dy) of a disc of radius r pixels.
function discOffsets(r) {
  const out = [];
  const reach = Math.ceil(r);
  for (let dy = -reach; dy <= reach; dy++) {
    for (let dx = -reach; dx <= reach; dx++) if (dx * dx + dy * dy <= r * r + 0.5) out.push(dx, dy);
  }
  return new Int32Array(out);
}

// Write the points into `image` (an ImageData): container position = p * scale + d, times
// `ratio` device pixels. colours: a Uint32Array per point, or one packed colour for all.
// Later points are drawn over earlier ones. Returns the number of points in view.
export function drawPixels(image, px, py, t, colours, radius, ratio = 1) {
  const w = image.width;
  const h = image.height;
  const pixels = new Uint32Array(image.data.buffer, image.data.byteOffset, w * h);
  const offsets = discOffsets(Math.max(0.5, radius * ratio));
  const k = offsets.length;
  const sx = t.scale * ratio;
  const ox = t.dx * ratio;
  const oy = t.dy * ratio;
  const single = typeof colours === 'number' ? colours : 0;
  const each = typeof colours === 'number' ? null : colours;
  const reach = Math.ceil(radius * ratio);
  let shown = 0;
  for (let i = 0, n = px.length; i < n; i++) {
    const x = Math.floor(px[i] * sx + ox);
    const y = Math.floor(py[i] * sx + oy);
    if (x < -reach || y < -reach || x >= w + reach || y >= h + reach) continue;
    shown++;
    const colour = each ? each[i] : single;
    if (x >= reach && y >= reach && x < w - reach && y < h - reach) {
      for (let j = 0; j < k; j += 2) pixels[(y + offsets[j + 1]) * w + x + offsets[j]] = colour;
    } else {
      for (let j = 0; j < k; j += 2) {
        const xx = x + offsets[j];
        const yy = y + offsets[j + 1];
        if (xx >= 0 && yy >= 0 && xx < w && yy < h) pixels[yy * w + xx] = colour;
      }
    }
  }
  return shown;
}

// A screen layer of many points: setData({lon, lat}, colours, radius); fires 'drawn' with
// {count (points in view), ms (time to write and put the pixels)}.
export const PointCanvas = CanvasLayer.extend({
  initialize(options) {
    L.setOptions(this, options);
    this.data = null;
  },

  setData({lon, lat}, colours = packColour('#3b6fb6'), radius = 1.5) {
    this.data = {...project(lon, lat), colours, radius};
    return this.redraw();
  },

  clear() {
    this.data = null;
    return this.redraw();
  },

  draw(ctx, size, t) {
    if (!this.data) return;
    const started = performance.now();
    const canvas = ctx.canvas;
    const image = ctx.createImageData(canvas.width, canvas.height);
    const ratio = canvas.width / size.x;
    const {px, py, colours, radius} = this.data;
    const count = drawPixels(image, px, py, t, colours, radius, ratio);
    ctx.putImageData(image, 0, 0);
    this.fire('drawn', {count, ms: performance.now() - started});
  },
});
