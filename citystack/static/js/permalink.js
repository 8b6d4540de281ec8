// The permalink: the page's URL hash holds what is looked at, so that copying the
// URL shares the view. `#layer=trees&map=40.71,-73.98,14&colour=Genus&scale=category
// &filters=[...]&days=Sat,Sun&analysis=clusters&p.eps=200` (URLSearchParams encoding).
// read() parses a hash; check() keeps of it what still fits the layer and the
// analyses, with a note for each thing left out; write() puts the state back.

import {colourKind, fieldOf} from './fields.js';

const OPS = ['in', 'not_in', 'min', 'max'];
const TIME_KEYS = ['from', 'to', 'days', 'hours'];
const DAYS = /^((mon|tue|wed|thu|fri|sat|sun|[0-6])(,|$))+$/i;
const HOURS = /^\d{1,2}(-\d{1,2})?$/;

// The hash's contents: {layer, map: {lat, lon, zoom} | null, colour: {field, scale}, filters, time,
// analysis: {name, params}, notes: [text]} (only what is there and well formed).
export function read(hash) {
  const q = new URLSearchParams(hash.replace(/^#/, ''));
  const notes = [];
  const link = {layer: q.get('layer') || '', map: null, colour: null, filters: [], time: {}, analysis: null, notes};
  if (q.has('map')) {
    const [lat, lon, zoom] = (q.get('map') || '').split(',').map(Number);
    if ([lat, lon, zoom].every(Number.isFinite) && Math.abs(lat) <= 90 && Math.abs(lon) <= 360 && zoom >= 0 && zoom <= 22) {
      link.map = {lat, lon, zoom};
    } else {
      notes.push('the map position ' + JSON.stringify(q.get('map')));
    }
  }
  if (q.has('colour')) link.colour = {field: q.get('colour'), scale: q.get('scale') || ''};
  if (q.has('filters')) {
    let list = null;
    try {
      list = JSON.parse(q.get('filters'));
    } catch (e) {
      list = null;
    }
    if (!Array.isArray(list)) notes.push('the filters (not a list)');
    for (const f of Array.isArray(list) ? list : []) {
      const ok = f && typeof f.field === 'string' && OPS.includes(f.op) &&
        (f.op === 'in' || f.op === 'not_in' ? Array.isArray(f.value) && f.value.length > 0 : ['number', 'string'].includes(typeof f.value));
      if (ok) link.filters.push({field: f.field, op: f.op, value: f.value});
      else notes.push('a filter ' + JSON.stringify(f));
    }
  }
  for (const key of TIME_KEYS) {
    const value = q.get(key);
    if (!value) continue;
    const ok = key === 'days' ? DAYS.test(value) : key === 'hours' ? HOURS.test(value) : !Number.isNaN(Date.parse(value));
    if (ok) link.time[key] = value;
    else notes.push(key + '=' + value);
  }
  if (q.get('analysis')) {
    const params = {};
    for (const [key, value] of q) if (key.startsWith('p.')) params[key.slice(2)] = value;
    link.analysis = {name: q.get('analysis'), params};
  }
  return link;
}

// What of the link fits this layer: {colour, filters, time, analysis}, adding a note for each thing left
// out. catalogue: the analyses the server declares.
export function check(link, layer, catalogue) {
  const notes = link.notes;
  let colour = null;
  if (link.colour) {
    const f = fieldOf(layer, link.colour.field);
    if (f && colourKind(f)) colour = link.colour;
    else notes.push('colour field ' + JSON.stringify(link.colour.field) + ' (not a field of ' + layer.name + ' to colour by)');
  }
  const filters = [];
  for (const f of link.filters) {
    const field = fieldOf(layer, f.field);
    if (field) filters.push(f);
    else notes.push('a filter on ' + JSON.stringify(f.field) + ' (no such field in ' + layer.name + ')');
  }
  const time = {};
  for (const [key, value] of Object.entries(link.time)) {
    if (layer.time || layer.kind === 'checkins') time[key] = value;
    else notes.push(key + '=' + value + ' (' + layer.name + ' has no time field)');
  }
  let analysis = null;
  if (link.analysis) {
    const a = catalogue.find((x) => x.name === link.analysis.name);
    if (!a) {
      notes.push('analysis ' + JSON.stringify(link.analysis.name) + ' (unknown)');
    } else if (a.kinds && !a.kinds.includes(layer.kind)) {
      notes.push('analysis ' + JSON.stringify(a.name) + ' (not for ' + layer.kind + ' layers)');
    } else {
      const declared = new Set((a.params || []).map((p) => p.name));
      const params = {};
      for (const [key, value] of Object.entries(link.analysis.params)) {
        if (declared.has(key)) params[key] = value;
        else notes.push('parameter ' + JSON.stringify(key) + ' of ' + a.name);
      }
      analysis = {name: a.name, params};
    }
  }
  return {colour, filters, time, analysis};
}

// The hash of the state (and the map's centre and zoom).
export function write(state, centre, zoom) {
  const q = new URLSearchParams();
  if (!state.layer) return '';
  q.set('layer', state.layer.name);
  if (centre) {
    const digits = Math.max(2, Math.ceil(zoom * 0.3) + 1);
    q.set('map', [centre.lat.toFixed(digits), centre.lng.toFixed(digits), String(Math.round(zoom * 2) / 2)].join(','));
  }
  if (state.colour.field) {
    q.set('colour', state.colour.field);
    if (state.colour.scale) q.set('scale', state.colour.scale);
  }
  if (state.filters.length) q.set('filters', JSON.stringify(state.filters));
  for (const key of TIME_KEYS) if (state.time[key]) q.set(key, state.time[key]);
  if (state.analysis.name) {
    q.set('analysis', state.analysis.name);
    for (const [key, value] of Object.entries(state.analysis.params || {})) q.set('p.' + key, value);
  }
  return '#' + q.toString();
}
