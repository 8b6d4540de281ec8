// The map page: a Leaflet map, the points of the view on a canvas, the menu,
// analyses and their overlays. Everything talks to the citystack API.

import {getJSON, isAbort, stream} from './api.js';
import {AnalysisPanel} from './analysis.js';
import {formatCount, formatValue, hideLegend, scaleLegend} from './legend.js';
import {Menu} from './menu.js';
import {Overlays} from './overlays.js';
import {PointsLayer} from './points.js';
import {Status} from './status.js';
import {Tooltip} from './tooltip.js';

const $ = (id) => document.getElementById(id);
const config = JSON.parse($('config').textContent);
const CELLS = 64;
const DEBOUNCE = 350; // ms after the map stops before an update on move

const map = L.map('map', {zoomControl: false, zoomSnap: 0.5, minZoom: 2});
L.control.zoom({position: 'topright'}).addTo(map);
L.control.scale({position: 'bottomright', imperial: false}).addTo(map);
const tiles = L.tileLayer(config.tileUrl, {attribution: config.tileAttribution, maxZoom: 19});
// Without tiles (offline, blocked) the map still works: the data draws on a plain background.
tiles.once('tileerror', () => map.getContainer().classList.add('no-tiles'));

const status = new Status($('status'));
const tooltip = new Tooltip($('tooltip'));
const points = new PointsLayer({id: 'points-canvas'});
let overlays = null;

const state = {
  layers: [],
  layer: null, // the chosen layer's description
  controller: null, // the running data update
  analysisController: null,
  timer: null,
  quiet: false, // moves made by the page itself do not trigger updates
};

const menu = new Menu({
  layer: (name) => selectLayer(name),
  colour: () => update(),
  update: () => update(),
  filter: () => schedule(),
});

const analyses = new AnalysisPanel({run: () => runAnalysis(), clear: () => clearAnalysis()});

function enc(name) {
  return encodeURIComponent(name);
}

// The view as minlon,minlat,maxlon,maxlat, clamped to the world.
function viewBbox() {
  const b = map.getBounds();
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const r = (v) => Math.round(v * 1e6) / 1e6;
  return [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90),
    clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)].map(r).join(',');
}

function viewParams() {
  return {bbox: viewBbox(), ...menu.timeParams()};
}

function quietly(move) {
  state.quiet = true;
  try {
    move();
  } finally {
    state.quiet = false;
  }
}

// Room for the panel: data fitted to the view should not hide under it.
function fitPadding() {
  const panel = $('panel');
  const wide = window.innerWidth > 640 && !panel.classList.contains('collapsed');
  const left = wide ? panel.offsetLeft + panel.offsetWidth + 16 : 16;
  const top = wide ? 16 : panel.offsetTop + panel.offsetHeight + 16;
  return {paddingTopLeft: [left, top], paddingBottomRight: [16, 16]};
}

function fitExtent(extent) {
  const [minlon, minlat, maxlon, maxlat] = extent;
  quietly(() => map.fitBounds([[minlat, minlon], [maxlat, maxlon]], {animate: false, ...fitPadding()}));
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(update, DEBOUNCE);
}

function showNotice(text) {
  const notice = $('notice');
  notice.textContent = text || '';
  notice.hidden = !text;
}

// Fetch what the view holds and draw it: bins first (cheap, and they count the
// points), then the points themselves when there are few enough.
async function update() {
  clearTimeout(state.timer);
  if (!state.layer) return;
  if (state.controller) state.controller.abort();
  const controller = (state.controller = new AbortController());
  const layer = state.layer;
  const field = menu.colour;
  const view = viewParams();
  const job = status.start('counting points in view');
  const options = {signal: controller.signal, onProgress: job.progress};
  try {
    const bins = await stream('/api/layers/' + enc(layer.name) + '/bins',
      {...view, cells: CELLS, field}, options);
    if (bins.total > config.binsThreshold) {
      points.setBins(bins, field);
      const grid = bins.grid;
      showNotice('Showing ' + grid.nx + '×' + grid.ny + ' bins: ' + formatCount(bins.total) +
        ' points in view — zoom in to see points');
      menu.setCount(0, 'points shown (' + formatCount(bins.total) + ' in view, binned)');
      document.body.dataset.bins = bins.features.length;
      document.body.dataset.total = bins.total;
    } else {
      const hasName = layer.fields.some((f) => f.name === 'name');
      const properties = [hasName ? 'name' : '', field].filter(Boolean).join(',');
      const collection = await stream('/api/layers/' + enc(layer.name) + '/features',
        {...view, limit: config.maxLimit, properties}, options);
      job.progress('drawing ' + formatCount(collection.features.length) + ' points');
      points.setPoints(collection.features, field);
      showNotice('');
      document.body.dataset.bins = 0;
      document.body.dataset.total = bins.total;
    }
    drawLegend(field);
    job.done();
  } catch (err) {
    if (isAbort(err)) job.done();
    else job.fail(err);
  } finally {
    if (state.controller === controller) state.controller = null;
  }
}

function drawLegend(field) {
  const legend = $('legend');
  if (!field) {
    if (points.mode === 'bins') scaleLegend(legend, {title: 'points per cell', scale: points.scale});
    else hideLegend(legend);
    return;
  }
  const note = points.mode === 'bins' ? 'mean per cell' : 'colour by rank (quantiles)';
  scaleLegend(legend, {field, title: field, scale: points.scale, note});
}

points.on('drawn', (e) => {
  document.body.dataset.points = e.count;
  document.body.dataset.mode = e.mode;
  if (e.mode === 'points') menu.setCount(e.count, e.count === 1 ? 'point shown' : 'points shown');
});

async function selectLayer(name) {
  const job = status.start('loading layer ' + name);
  try {
    const info = await getJSON('/api/layers/' + enc(name));
    state.layer = info;
    menu.setLayer(info, menu.colour);
    analyses.setLayer(info);
    clearAnalysis();
    points.clear();
    if (info.extent) fitExtent(info.extent);
    job.done();
  } catch (err) {
    job.fail(err);
    return;
  }
  await update();
}

// ---- analyses ----

async function runAnalysis() {
  const analysis = analyses.current;
  if (!analysis || !state.layer) return;
  if (state.analysisController) state.analysisController.abort();
  const controller = (state.analysisController = new AbortController());
  const job = status.start('starting ' + analysis.title);
  analyses.setBusy(true);
  try {
    const result = await stream('/api/analyses/' + enc(analysis.name),
      {layer: state.layer.name, ...viewParams(), ...analyses.values()},
      {signal: controller.signal, onProgress: job.progress});
    result.analysis = result.analysis || analysis.name;
    const drawn = overlays.show(result);
    analyses.showResult(result, drawn);
    window.citystack.lastResult = result;
    job.done();
  } catch (err) {
    if (isAbort(err)) job.done();
    else job.fail(err);
  } finally {
    if (state.analysisController === controller) {
      state.analysisController = null;
      analyses.setBusy(false);
    }
  }
}

function clearAnalysis() {
  if (state.analysisController) state.analysisController.abort();
  if (overlays) overlays.clear();
  analyses.setCleared();
}

// ---- hover ----

function onHover(e) {
  if (overlays && overlays.hovering) return;
  const hit = points.hit(e.containerPoint);
  const ev = e.originalEvent;
  map.getContainer().classList.toggle('over-point', Boolean(hit));
  const ring = $('hover-ring');
  ring.hidden = !(hit && hit.feature);
  if (!hit) {
    tooltip.hide();
    return;
  }
  if (hit.feature) {
    const at = clientPoint(hit.x, hit.y);
    ring.style.left = at.x + 'px';
    ring.style.top = at.y + 'px';
    const f = hit.feature;
    const props = f.properties || {};
    const title = props.name === undefined || props.name === null ? 'feature ' + f.id : String(props.name);
    const rows = Object.entries(props)
      .filter(([k]) => k !== 'name')
      .map(([k, v]) => [k, typeof v === 'number' ? formatValue(v) : v === null ? '–' : String(v)]);
    tooltip.show(ev.clientX, ev.clientY, title, rows);
  } else {
    const p = hit.cell.props;
    const field = points.bins.field;
    const rows = field
      ? [['mean ' + field, formatValue(p.mean)], ['min', formatValue(p.min)], ['max', formatValue(p.max)]]
      : [];
    tooltip.show(ev.clientX, ev.clientY, formatCount(p.count) + (p.count === 1 ? ' point' : ' points'), rows);
  }
}

// ---- start ----

async function start() {
  const job = status.start('loading layers');
  try {
    const [{layers}, catalogue] = await Promise.all([
      getJSON('/api/layers'),
      getJSON('/api/analyses').catch(() => ({analyses: []})),
    ]);
    state.layers = layers;
    if (!layers.length) throw new Error('the database has no layers: load one with `citystack load`');
    const first = layers.find((l) => l.name === config.defaultLayer) || layers[0];
    if (first.extent) fitExtent(first.extent);
    else map.setView([0, 0], 2);
    tiles.addTo(map);
    points.addTo(map);
    overlays = new Overlays(map, $('overlay-legend'), tooltip);
    map.on('mousemove', onHover);
    map.on('mouseout movestart zoomstart', () => {
      tooltip.hide();
      $('hover-ring').hidden = true;
    });
    map.on('moveend', () => {
      if (!state.quiet && menu.updateOnMove) schedule();
    });
    menu.setLayers(layers, first.name);
    analyses.setCatalogue(catalogue.analyses || []);
    job.done();
    await selectLayer(first.name);
  } catch (err) {
    if (!map._loaded) map.setView([0, 0], 2);
    job.fail(err);
  }
}

// Hooks for the browser tests and the console. Positions are client pixels.
function clientPoint(x, y) {
  const box = map.getContainer().getBoundingClientRect();
  return {x: box.left + x, y: box.top + y};
}

window.citystack = {
  map,
  config,
  points,
  lastResult: null,
  update,
  selectLayer: (name) => {
    $('layer').value = name;
    return selectLayer(name);
  },
  // Move the map to [minlon, minlat, maxlon, maxlat] and update; resolves when drawn.
  fitBounds: (bbox) => {
    quietly(() => map.fitBounds([[bbox[1], bbox[0]], [bbox[3], bbox[2]]], {animate: false}));
    return update();
  },
  setView: (lat, lon, zoom) => {
    quietly(() => map.setView([lat, lon], zoom, {animate: false}));
    return update();
  },
  bbox: viewBbox,
  // The i-th drawn point: {x, y, name, id}.
  pointAt: (i) => {
    const p = points.drawnPoints()[i];
    if (!p) return null;
    return {...clientPoint(p.x, p.y), name: p.feature.properties.name, id: p.feature.id};
  },
  drawnPoints: () => points.drawnPoints().map((p) => ({...clientPoint(p.x, p.y), name: p.feature.properties.name})),
  ready: null,
};

window.citystack.ready = start();
