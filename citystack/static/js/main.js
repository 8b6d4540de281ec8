// The map page. Data flows one way: the menu, the analysis panel and the map
// set the state; the state makes the requests (view.js, api.js); the answers
// are drawn (points.js, overlays.js, legend.js) and counted in the menu.

import * as api from './api.js';
import {AnalysisPanel} from './analysis.js';
import {byId, clear, fill} from './dom.js';
import {DensityLayer, densityLegend} from './density.js';
import {countOf, formatCount} from './format.js';
import {hoverPoints} from './hover.js';
import {clientPoint} from './layers.js';
import {scaleLegend} from './legend.js';
import {Menu} from './menu.js';
import {Overlays} from './overlays.js';
import {PointsLayer} from './points.js';
import {Status} from './status.js';
import {Task} from './task.js';
import {Tooltip} from './tooltip.js';
import {loadView} from './view.js';

const config = JSON.parse(byId('config').textContent);
const DEBOUNCE = 350; // ms after the map stops before an update on move

const map = L.map('map', {zoomControl: false, zoomSnap: 0.5, minZoom: 2});
L.control.zoom({position: 'topright'}).addTo(map);
L.control.scale({position: 'bottomright', imperial: false}).addTo(map);
const tiles = L.tileLayer(config.tileUrl, {attribution: config.tileAttribution, maxZoom: 19});
// Without tiles (offline, blocked) the map still works: the data draws on a plain background.
tiles.once('tileerror', () => map.getContainer().classList.add('no-tiles'));

const status = new Status(byId('status'));
const tooltip = new Tooltip(byId('tooltip'));
const points = new PointsLayer({id: 'points-canvas'});
// Above the point budget: the view's density image, an image pixel per 2 x 2 screen pixels (legible when sparse).
const density = new DensityLayer({id: 'density-canvas', pixel: 2});
const viewTask = new Task(status);
const analysisTask = new Task(status);
let overlays = null;

// What the view asks for: a layer, a colour field and a time filter; the map holds the bbox.
const state = {
  layer: null, // the chosen layer's description
  field: '', // '' when the layer has no numeric field
  time: {}, // {days, hours} of check-in layers
  timer: null, // the update on move that waits for the map to stop
  quiet: false, // moves made by the page itself do not trigger updates
};

const menu = new Menu({
  layer: (name) => selectLayer(name),
  colour: (field) => {
    state.field = field;
    update();
  },
  update: () => update(),
  time: (time) => {
    state.time = time;
    schedule();
  },
});

const analyses = new AnalysisPanel({run: () => runAnalysis(), clear: () => clearAnalysis()});

// The view as minlon,minlat,maxlon,maxlat, clamped to the world.
function viewBbox() {
  const b = map.getBounds();
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const r = (v) => Math.round(v * 1e6) / 1e6;
  return [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90),
    clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)].map(r).join(',');
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
  const panel = byId('panel');
  const wide = window.innerWidth > 640 && !panel.classList.contains('collapsed');
  const left = wide ? panel.offsetLeft + panel.offsetWidth + 16 : 16;
  const top = wide ? 16 : panel.offsetTop + panel.offsetHeight + 16;
  return {paddingTopLeft: [left, top], paddingBottomRight: [16, 16]};
}

// [minlon, minlat, maxlon, maxlat] into the view; padding: leave room for the panel.
function fitExtent([minlon, minlat, maxlon, maxlat], padding = true) {
  quietly(() => map.fitBounds([[minlat, minlon], [maxlat, maxlon]], {animate: false, ...(padding ? fitPadding() : {})}));
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(update, DEBOUNCE);
}

// ---- the view: state -> request -> drawing ----

function update() {
  clearTimeout(state.timer);
  if (!state.layer) return Promise.resolve();
  const query = {layer: state.layer, field: state.field, bbox: viewBbox(), time: state.time};
  return viewTask.run('counting points in view', async ({signal, progress}) => {
    const view = await loadView(query, config, {signal, onProgress: progress});
    if (view.mode === 'points') progress('drawing ' + countOf(view.features.length, 'point'));
    else {
      progress('drawing the density of ' + countOf(view.total, 'point'));
      const stat = query.field ? {field: query.field, stat: 'mean'} : {};
      view.density = await density.show(query.layer.name, {...query.time, ...stat}, {signal});
    }
    drawView(view, query.field);
  });
}

function drawView(view, field) {
  const notice = byId('notice');
  if (view.mode === 'bins') {
    points.setBins(view.bins, field); // counted and hovered by cell, drawn as the density image
    points.getElement().style.visibility = view.density ? 'hidden' : '';
    fill(notice, 'Showing the density of ' + formatCount(view.total) + ' points in view (' +
      (field ? 'mean ' + field + ' ' : '') + 'per pixel) — zoom in to see points');
    menu.setCount(0, formatCount(view.total) + ' in view, binned');
    document.body.dataset.bins = view.bins.features.length;
  } else {
    density.clear();
    points.getElement().style.visibility = '';
    points.setPoints(view.features, field);
    clear(notice);
    document.body.dataset.bins = 0;
  }
  document.body.dataset.total = view.total;
  if (view.density) densityLegend(byId('legend'), view.density);
  else drawLegend(field);
}

function drawLegend(field) {
  const legend = byId('legend');
  const bins = points.mode === 'bins';
  if (field) scaleLegend(legend, {field, title: field, scale: points.scale, note: bins ? 'mean per cell' : 'colour by rank (quantiles)'});
  else if (bins) scaleLegend(legend, {title: 'points per cell', scale: points.scale});
  else clear(legend);
}

points.on('drawn', (e) => {
  document.body.dataset.points = e.count;
  document.body.dataset.mode = e.mode;
  if (e.mode === 'points') menu.setCount(e.count);
});

async function selectLayer(name) {
  const job = status.start('loading layer ' + name);
  try {
    const info = await api.layer(name);
    state.layer = info;
    Object.assign(state, menu.setLayer(info, state.field));
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

// ---- analyses: the panel's values and the view -> request -> overlay ----

async function runAnalysis() {
  const analysis = analyses.current;
  if (!analysis || !state.layer) return;
  const params = {layer: state.layer.name, bbox: viewBbox(), ...state.time, ...analyses.values()};
  analyses.setBusy(true);
  await analysisTask.run('starting ' + analysis.title, async ({signal, progress}) => {
    const result = await api.analysis(analysis.name, params, {signal, onProgress: progress});
    result.analysis = result.analysis || analysis.name;
    analyses.showResult(result, overlays.show(result));
    hooks.lastResult = result;
  });
  if (!analysisTask.running) analyses.setBusy(false);
}

function clearAnalysis() {
  analysisTask.abort();
  if (overlays) overlays.clear();
  analyses.setCleared();
}

// ---- start ----

async function start() {
  const job = status.start('loading layers');
  try {
    const [{layers}, catalogue] = await Promise.all([
      api.layers(),
      api.analyses().catch(() => ({analyses: []})),
    ]);
    if (!layers.length) throw new Error('the database has no layers: load one with `citystack load`');
    const first = layers.find((l) => l.name === config.defaultLayer) || layers[0];
    if (first.extent) fitExtent(first.extent);
    else map.setView([0, 0], 2);
    tiles.addTo(map);
    density.addTo(map);
    points.addTo(map);
    overlays = new Overlays(map, byId('overlay-legend'), tooltip);
    hoverPoints(map, points, tooltip, byId('hover-ring'), () => overlays.hovering);
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
const hooks = {
  map,
  config,
  points,
  lastResult: null,
  update,
  selectLayer,
  // Move the map to [minlon, minlat, maxlon, maxlat] and update; resolves when drawn.
  fitBounds: (bbox) => {
    fitExtent(bbox, false);
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
    return {...clientPoint(map, p.x, p.y), name: p.feature.properties.name, id: p.feature.id};
  },
  drawnPoints: () => points.drawnPoints().map((p) => ({...clientPoint(map, p.x, p.y), name: p.feature.properties.name})),
  ready: null,
};

window.citystack = hooks;
hooks.ready = start();
