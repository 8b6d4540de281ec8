// The map page. Data flows one way: the menu, the analysis panel and the map
// set the state; the state makes the requests (view.js, api.js); the answers
// are drawn (points.js, overlays.js, legend.js) and counted in the menu.

import * as api from './api.js';
import {AnalysisPanel} from './analysis.js';
import {Card} from './card.js';
import {colourMode, colouring, countColouring} from './colourby.js';
import {byId, clear, el, fill} from './dom.js';
import {DensityLayer, densityLegend} from './density.js';
import {defaultColour, nameField} from './fields.js';
import {FilterPanel} from './filters.js';
import {countOf, formatCount} from './format.js';
import {hoverPoints} from './hover.js';
import {clientPoint} from './layers.js';
import {barNodes, colouringLegend} from './legend.js';
import {Menu} from './menu.js';
import {Overlays} from './overlays.js';
import * as permalink from './permalink.js';
import {PointsLayer} from './points.js';
import * as shared from './state.js';
import {Status} from './status.js';
import {Task} from './task.js';
import {TipFields} from './tipfields.js';
import {Tooltip} from './tooltip.js';
import {loadView} from './view.js';

const config = JSON.parse(byId('config').textContent);
const DEBOUNCE = 350; // ms after the map stops before an update on move
const FILTER_DELAY = 60; // ms after a filter changes (a brush that moves asks again at most this often)
const SMALL = '(max-width: 640px)';

const map = L.map('map', {zoomControl: false, zoomSnap: 0.5, minZoom: 2});
L.control.zoom({position: 'topright'}).addTo(map);
L.control.scale({position: 'bottomright', imperial: false}).addTo(map);
const tiles = L.tileLayer(config.tileUrl, {attribution: config.tileAttribution, maxZoom: 19});
// Without tiles (offline, blocked) the map still works: the data draws on a plain background.
tiles.once('tileerror', () => map.getContainer().classList.add('no-tiles'));

const status = new Status(byId('status'));
const tooltip = new Tooltip(byId('tooltip'));
// The pinned point: a ring on the map while its card is open.
const pinRing = L.circleMarker([0, 0], {radius: 9, color: '#1c2530', weight: 2.5, fill: false, interactive: false});
const card = new Card(byId('card'), () => pinRing.remove());
const points = new PointsLayer({id: 'points-canvas'});
// Above the point budget: the view's density image, an image pixel per 2 x 2 screen pixels (legible when sparse).
const density = new DensityLayer({id: 'density-canvas', pixel: 2});
const viewTask = new Task(status);
const analysisTask = new Task(status);
let overlays = null;

// The shared state (state.js) says what is looked at; these are the page's own workings.
const {state} = shared;
const local = {
  timer: null, // the update that waits for the map to stop or a filter to settle
  quiet: false, // moves made by the page itself do not trigger updates
  started: false, // the permalink is written only once the page has read it
  waiting: null, // the status job of a filter change waiting for its update
  layers: [], // the layers the server has
};

const menu = new Menu({
  layer: (name) => selectLayer(name),
  colour: (colour) => shared.update({colour: {...colour, domain: null}}, 'menu'),
  resetScale: () => shared.update({colour: {...state.colour, domain: null}}, 'menu'),
  update: () => update(),
  time: (time) => shared.update({time: {...state.time, days: time.days || '', hours: time.hours || ''}}, 'menu'),
});

const tips = new TipFields(byId('tip-fields'), () => update());

const analyses = new AnalysisPanel({run: () => runAnalysis(), clear: () => clearAnalysis()});

// The linked filter charts: their filters go with every request of the page, beside the shared state's.
const filters = new FilterPanel(byId('menu-body'), {
  onChange: () => update(), bbox: () => viewBbox(), extra: () => shared.filterParams()});

// What changes in the state asks of the view; 'select' (a layer being set up) updates by itself.
shared.subscribe((s, changed, source) => {
  writeLink();
  if (changed.has('time') && source !== 'menu') menu.setTime(s.time); // a time chart's choice
  if (source === 'select' || !s.layer) return;
  if (changed.has('colour') || changed.has('layer')) update();
  else if (changed.has('filters') || changed.has('time')) schedule(FILTER_DELAY, true);
});

// The view as minlon,minlat,maxlon,maxlat, clamped to the world.
function viewBbox() {
  const b = map.getBounds();
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const r = (v) => Math.round(v * 1e6) / 1e6;
  return [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90),
    clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -90, 90)].map(r).join(',');
}

function quietly(move) {
  local.quiet = true;
  try {
    move();
  } finally {
    local.quiet = false;
  }
}

// Room for the panel: data fitted to the view should not hide under it (nor under the folded
// legends of a small screen).
function fitPadding() {
  const panel = byId('panel');
  const wide = !window.matchMedia(SMALL).matches && !panel.classList.contains('collapsed');
  const small = window.matchMedia(SMALL).matches;
  const left = wide ? panel.offsetLeft + panel.offsetWidth + 16 : 16;
  const top = wide ? 16 : panel.offsetTop + panel.offsetHeight + 16;
  return {paddingTopLeft: [left, top], paddingBottomRight: [small ? 44 : 16, small ? 64 : 16]};
}

// [minlon, minlat, maxlon, maxlat] into the view; padding: leave room for the panel.
function fitExtent([minlon, minlat, maxlon, maxlat], padding = true) {
  quietly(() => map.fitBounds([[minlat, minlon], [maxlat, maxlon]], {animate: false, ...(padding ? fitPadding() : {})}));
}

// An update after `delay`; pending: say so on the status line meanwhile (a filter changed).
function schedule(delay = DEBOUNCE, pending = false) {
  clearTimeout(local.timer);
  if (pending && !local.waiting) local.waiting = status.start('filtering');
  local.timer = setTimeout(update, delay);
}

function endWaiting() {
  if (local.waiting) local.waiting.done();
  local.waiting = null;
}

// The URL says what is shown (history.replaceState: no new history entries).
function writeLink() {
  if (!local.started || !state.layer) return;
  const centre = map.getCenter();
  state.view = {lat: centre.lat, lon: centre.lng, zoom: map.getZoom()};
  const hash = permalink.write(state, map.getCenter(), map.getZoom());
  if (hash !== location.hash) history.replaceState(null, '', location.pathname + location.search + hash);
}

// What a link asked for that the page left out, said once, with a close button.
function showLinkNotes(notes) {
  const node = byId('link-note');
  if (!notes.length) {
    clear(node);
    return;
  }
  const close = el('button', 'note-close', '×');
  close.type = 'button';
  close.setAttribute('aria-label', 'Close the note');
  close.addEventListener('click', () => clear(node));
  fill(node, el('span', '', 'Ignored from the link: ' + notes.join('; ') + '.'), close);
}

// ---- the view: state -> request -> drawing ----

// The query parameters of every filter: the shared state's (legend, menu, link) and the filter charts'.
function allFilters() {
  return {...shared.filterParams(), ...filters.params()};
}

function update() {
  clearTimeout(local.timer);
  if (!state.layer) {
    endWaiting();
    return Promise.resolve();
  }
  const layer = state.layer;
  const {kind} = colourMode(layer, state.colour);
  const field = kind ? state.colour.field : '';
  const query = {
    layer,
    bbox: viewBbox(),
    filters: allFilters(),
    binsField: kind === 'number' ? field : '',
    properties: [nameField(layer), field, ...tips.chosen()],
  };
  hooks.lastQuery = {bbox: query.bbox, ...query.filters};
  const run = viewTask.run('counting points in view', async ({signal, progress}) => {
    const view = await loadView(query, config, {signal, onProgress: progress});
    if (view.mode === 'points') progress('drawing ' + countOf(view.features.length, 'point'));
    else {
      progress('drawing the density of ' + countOf(view.total, 'point'));
      const stat = query.binsField ? {field: query.binsField, stat: 'mean'} : {};
      view.density = await density.show(layer.name, {...query.filters, ...stat}, {signal});
    }
    if (layer === state.layer) drawView(view, field);
  });
  endWaiting(); // after the run's own job has started: the status line is never idle between them
  return run;
}

// A colouring whose domain the state keeps from now on (until the user resets it).
function kept(paint) {
  if (paint && paint.domain && !state.colour.domain) state.colour.domain = paint.domain;
  return paint;
}

function drawView(view, field) {
  const notice = byId('notice');
  const layer = state.layer;
  if (view.mode === 'bins') {
    const binsField = colourMode(layer, state.colour).kind === 'number' ? field : '';
    points.setBins(view.bins, binsField,
      (values) => (binsField ? kept(colouring(layer, state.colour, values, {bins: true})) : countColouring(values)));
    points.getElement().style.visibility = view.density ? 'hidden' : ''; // counted and hovered by cell
    const grid = view.bins.grid;
    fill(notice, (view.density ? 'Showing the density of ' + formatCount(view.total) + ' points in view (' +
      (binsField ? 'mean ' + binsField + ' ' : '') + 'per pixel)' :
      'Showing ' + grid.nx + '×' + grid.ny + ' bins: ' + formatCount(view.total) + ' points in view') +
      ' — zoom in to see points');
    menu.setCount(0, formatCount(view.total) + ' in view, binned');
    document.body.dataset.bins = view.bins.features.length;
  } else {
    density.clear();
    points.getElement().style.visibility = '';
    points.setPoints(view.features, field, (values) => kept(colouring(layer, state.colour, values)));
    clear(notice);
    document.body.dataset.bins = 0;
  }
  document.body.dataset.total = view.total;
  // A category colouring keeps its (clickable) legend over the density image; others show the image's scale.
  if (view.density && colourMode(layer, state.colour).kind !== 'category') densityLegend(byId('legend'), view.density);
  else drawLegend(field);
}

function drawLegend(field) {
  const legend = byId('legend');
  let scale = points.scale;
  const bins = points.mode === 'bins';
  if (!scale || (!field && !bins)) {
    clear(legend);
    return;
  }
  const extra = [];
  if (bins && colourMode(state.layer, state.colour).kind === 'category') {
    // the cells count points; the categories stay listed (and clickable) with the layer's counts
    extra.push(el('div', 'legend-note', 'cells: points per cell; zoom in to see points coloured by ' + field),
      ...barNodes(scale.legend));
    scale = colouring(state.layer, state.colour, []);
  }
  const filter = shared.filtersOf(field).find((f) => f.op === 'in');
  if (filter) {
    const all = el('button', 'button small legend-all', 'Show all');
    all.type = 'button';
    all.addEventListener('click', () => shared.setFilter(field, 'in', [], 'legend'));
    extra.push(all);
  }
  colouringLegend(legend, scale.legend, {
    active: filter ? filter.value : [],
    onPick: (value) => shared.toggleValue(field, value, 'legend'),
    extra,
  });
}

points.on('drawn', (e) => {
  document.body.dataset.drawnAt = String(performance.now());
  document.body.dataset.points = e.count;
  document.body.dataset.mode = e.mode;
  if (e.mode === 'points') menu.setCount(e.count);
});

// A layer, fresh or as a link describes it (link: permalink.read()'s answer, or null).
async function selectLayer(name, link = null) {
  const job = status.start('loading layer ' + name);
  let restore = null;
  try {
    const info = await api.layer(name);
    restore = link ? permalink.check(link, info, analyses.catalogue) : null;
    const chosen = menu.setLayer(info, (restore && restore.colour) || {field: defaultColour(info), scale: ''});
    const time = {from: '', to: '', days: '', hours: '', ...(restore ? restore.time : {})};
    menu.setTime(time);
    tips.setLayer(info, nameField(info));
    analyses.setLayer(info);
    filters.setLayer(info, defaultColour(info));
    clearAnalysis(false);
    points.clear();
    card.hide();
    shared.update({
      layer: info,
      colour: {...chosen.colour, domain: null},
      filters: restore ? restore.filters : [],
      time,
      analysis: {name: '', params: {}},
    }, 'select');
    if (link && link.map) {
      quietly(() => map.setView([link.map.lat, link.map.lon], link.map.zoom, {animate: false}));
    } else if (info.extent) {
      if (window.matchMedia(SMALL).matches) menu.fold(); // on a phone, show the map the layer is fitted to
      fitExtent(info.extent);
    }
    job.done();
  } catch (err) {
    job.fail(err);
    return;
  }
  writeLink();
  const shown = await update();
  if (!shown && restore && restore.filters.length && viewTask.error && viewTask.error.status === 400) {
    // the server refused the link's filters (a stale value): show the layer without them
    link.notes.push('its filters (' + viewTask.error.message + ')');
    shared.update({filters: []}, 'select');
    await update();
  }
  if (restore && restore.analysis) {
    link.notes.push(...analyses.setValues(restore.analysis.name, restore.analysis.params));
    await runAnalysis();
  }
  if (link) showLinkNotes(link.notes);
}

// Pin a point: its card at once with what the view has, then with every field.
async function pin(feature) {
  const layer = state.layer;
  const named = nameField(layer);
  card.show(feature, layer, named, 'loading every field…');
  const [lon, lat] = feature.geometry.coordinates;
  pinRing.setLatLng([lat, lon]).addTo(map);
  const d = 1e-4;
  try {
    const all = await api.features(layer.name, {bbox: [lon - d, lat - d, lon + d, lat + d].join(','), limit: 1000});
    const full = all.features.find((f) => String(f.id) === String(feature.id));
    if (card.feature === feature) card.show(full || feature, layer, named, full ? '' : 'could not load the other fields');
  } catch (err) {
    if (card.feature === feature) card.show(feature, layer, named, 'could not load the other fields: ' + err.message);
  }
}

// ---- analyses: the panel's values and the view -> request -> overlay ----

async function runAnalysis() {
  const analysis = analyses.current;
  if (!analysis || !state.layer) return;
  const values = analyses.values();
  const params = {layer: state.layer.name, bbox: viewBbox(), ...allFilters(), ...values};
  shared.update({analysis: {name: analysis.name, params: values}}, 'analysis');
  analyses.setBusy(true);
  await analysisTask.run('starting ' + analysis.title, async ({signal, progress}) => {
    const result = await api.analysis(analysis.name, params, {signal, onProgress: progress});
    result.analysis = result.analysis || analysis.name;
    analyses.showResult(result, overlays.show(result));
    hooks.lastResult = result;
    filters.setResult(result);
  });
  if (!analysisTask.running) analyses.setBusy(false);
}

// say: tell the state (a new layer says it by itself).
function clearAnalysis(say = true) {
  analysisTask.abort();
  if (overlays) overlays.clear();
  analyses.setCleared();
  filters.setResult(null);
  if (say && state.analysis.name) shared.update({analysis: {name: '', params: {}}}, 'analysis');
}

// ---- start ----

// The layer a link names, or null (noted when it names one that is not there).
function linkLayer(link) {
  const layer = local.layers.find((l) => l.name === link.layer);
  if (link.layer && !layer) link.notes.push('layer ' + JSON.stringify(link.layer) + ' (no such layer)');
  return layer || null;
}

async function start() {
  const job = status.start('loading layers');
  const link = permalink.read(location.hash);
  try {
    const [{layers}, catalogue] = await Promise.all([
      api.layers(),
      api.analyses().catch(() => ({analyses: []})),
    ]);
    if (!layers.length) throw new Error('the database has no layers: load one with `citystack load`');
    local.layers = layers;
    const first = linkLayer(link) || layers.find((l) => l.name === config.defaultLayer) || layers[0];
    if (link.map) map.setView([link.map.lat, link.map.lon], link.map.zoom, {animate: false});
    else if (first.extent) fitExtent(first.extent);
    else map.setView([0, 0], 2);
    tiles.addTo(map);
    density.addTo(map);
    points.addTo(map);
    overlays = new Overlays(map, byId('overlay-legend'), tooltip);
    hoverPoints(map, points, tooltip, byId('hover-ring'), {
      paused: () => overlays.hovering,
      describe: () => ({layer: state.layer, nameField: nameField(state.layer), fields: tips.chosen()}),
      onPin: (feature) => pin(feature),
    });
    map.on('moveend', () => {
      if (local.quiet) return;
      writeLink();
      if (menu.updateOnMove) {
        schedule();
        filters.viewChanged();
      }
    });
    menu.setLayers(layers, first.name);
    analyses.setCatalogue(catalogue.analyses || []);
    job.done();
    local.started = true;
    // the link's other values apply to the layer shown (what does not fit it is noted)
    await selectLayer(first.name, link);
    // a link pasted over this page's own (the page's replaceState does not fire this)
    window.addEventListener('hashchange', () => {
      const again = permalink.read(location.hash);
      const layer = linkLayer(again) || state.layer;
      if (layer) selectLayer(layer.name, again);
    });
  } catch (err) {
    if (!map._loaded) map.setView([0, 0], 2);
    job.fail(err);
  }
}

const named = (p) => {
  const field = nameField(state.layer);
  return field ? p.feature.properties[field] : undefined;
};

// Hooks for the browser tests and the console. Positions are client pixels.
const hooks = {
  map,
  config,
  points,
  filters,
  state,
  shared,
  lastResult: null,
  lastQuery: null,
  update,
  selectLayer,
  // Move the map to [minlon, minlat, maxlon, maxlat] and update; resolves when drawn.
  fitBounds: (bbox) => {
    fitExtent(bbox, false);
    filters.viewChanged();
    writeLink();
    return update();
  },
  setView: (lat, lon, zoom) => {
    quietly(() => map.setView([lat, lon], zoom, {animate: false}));
    writeLink();
    return update();
  },
  bbox: viewBbox,
  // The i-th drawn point: {x, y, name, id}.
  pointAt: (i) => {
    const p = points.drawnPoints()[i];
    if (!p) return null;
    return {...clientPoint(map, p.x, p.y), name: named(p), id: p.feature.id};
  },
  drawnPoints: () => points.drawnPoints().map((p) => ({...clientPoint(map, p.x, p.y), name: named(p), id: p.feature.id})),
  ready: null,
};

window.citystack = hooks;
hooks.ready = start();
