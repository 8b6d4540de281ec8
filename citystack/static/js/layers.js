// Screen layers: one element (a <canvas> or an <svg>) the size of the map
// container, kept at the container's top-left corner in a map pane, scaled
// along with Leaflet's zoom animation and redrawn after every move.
//
// Positions are projected once, at zoom 0 (project0); at draw time
// `t = {scale, dx, dy, zoom, x(px), y(py)}` turns them into container pixels:
// t.x(px) = px * t.scale + t.dx, t.y(py) = py * t.scale + t.dy.

export const ScreenLayer = L.Layer.extend({
  options: {pane: 'overlayPane', id: '', className: ''},

  initialize(options) {
    L.setOptions(this, options);
  },

  onAdd(map) {
    const el = (this._el = this._create());
    if (this.options.id) el.id = this.options.id;
    el.classList.add('cs-layer', 'leaflet-zoom-' + (map._zoomAnimated ? 'animated' : 'hide'));
    if (this.options.className) el.classList.add(...this.options.className.split(' '));
    this.getPane().appendChild(el);
    this._reset();
  },

  onRemove() {
    this._el.remove();
    this._el = null;
  },

  getEvents() {
    const events = {moveend: this._reset, resize: this._reset};
    if (this._map && this._map._zoomAnimated) events.zoomanim = this._animateZoom;
    return events;
  },

  getElement() {
    return this._el;
  },

  redraw() {
    if (this._map && this._el) this._reset();
    return this;
  },

  // Zoom-0 pixel position of a lon, lat.
  project0(lon, lat) {
    return this._map.project(L.latLng(lat, lon), 0);
  },

  // Zoom-0 pixel positions of n places; at(i) is the i-th [lon, lat].
  projectAll(n, at) {
    const px = new Float64Array(n);
    const py = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const [lon, lat] = at(i);
      const p = this.project0(lon, lat);
      px[i] = p.x;
      py[i] = p.y;
    }
    return {px, py};
  },

  _animateZoom(e) {
    const offset = this._map._latLngToNewLayerPoint(this._corner, e.zoom, e.center);
    L.DomUtil.setTransform(this._el, offset, this._map.getZoomScale(e.zoom));
  },

  _reset() {
    const map = this._map;
    const size = map.getSize();
    this._corner = map.containerPointToLatLng([0, 0]);
    L.DomUtil.setPosition(this._el, map.containerPointToLayerPoint([0, 0]));
    this._update(size, this.transform());
  },

  // From zoom-0 pixels to container pixels at the current view.
  transform() {
    const map = this._map;
    const zoom = map.getZoom();
    const centre = map.getCenter();
    const a = map.latLngToContainerPoint(centre);
    const b = map.project(centre, zoom);
    const scale = map.getZoomScale(zoom, 0);
    const dx = a.x - b.x;
    const dy = a.y - b.y;
    return {scale, dx, dy, zoom, x: (px) => px * scale + dx, y: (py) => py * scale + dy};
  },
});

// A container point of the map in client pixels (what the pointer and the tests use).
export function clientPoint(map, x, y) {
  const box = map.getContainer().getBoundingClientRect();
  return {x: box.left + x, y: box.top + y};
}

// Subclasses implement draw(ctx, size, t).
export const CanvasLayer = ScreenLayer.extend({
  _create() {
    return document.createElement('canvas');
  },

  _update(size, t) {
    const canvas = this._el;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(size.x * ratio);
    canvas.height = Math.round(size.y * ratio);
    canvas.style.width = size.x + 'px';
    canvas.style.height = size.y + 'px';
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, size.x, size.y);
    this.draw(ctx, size, t);
  },

  draw() {},
});

// Add to ctx's path a disc of radius r for each of `indices` whose centre is in
// view; drawn(i, x, y), when given, hears of each.
export function discs(ctx, indices, {px, py}, t, size, r, drawn) {
  for (const i of indices) {
    const x = t.x(px[i]);
    const y = t.y(py[i]);
    if (x < -r || y < -r || x > size.x + r || y > size.y + r) continue;
    if (drawn) drawn(i, x, y);
    ctx.moveTo(x + r, y);
    ctx.arc(x, y, r, 0, 2 * Math.PI);
  }
}

// Subclasses implement position(svg, size, t): move their shapes to the view.
export const SvgLayer = ScreenLayer.extend({
  _create() {
    return document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  },

  _update(size, t) {
    const svg = this._el;
    svg.setAttribute('width', size.x);
    svg.setAttribute('height', size.y);
    svg.setAttribute('viewBox', '0 0 ' + size.x + ' ' + size.y);
    this.position(svg, size, t);
  },

  position() {},
});
