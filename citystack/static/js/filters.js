// The filter panel: one small linked chart per field the user adds.
//
// Numbers: a histogram with a brush (FIELD_min / FIELD_max); text and bool
// fields: bars with counts and checkboxes (FIELD=v ...); the time field: hour
// of day, day of week and a date timeline, each with a brush (hours, days,
// from / to). Each chart shows the points that pass every *other* filter, in
// the current view or the whole layer (a toggle): one request to
// /api/layers/{layer}/histograms answers them all, the server leaving out each
// chart's own filter. Brushing updates the map and the other charts while the
// brush moves: requests are throttled, and a superseded one is aborted.

import {BarChart, CategoryList} from './charts.js';
import {el, input, option} from './dom.js';
import {saveBlob, saveResult} from './download.js';
import {getJSON, isAbort, url} from './http.js';
import {Playback} from './playback.js';
import {mapPNG} from './snapshot.js';
import {paramsOf} from './state.js';

const THROTTLE = 120; // ms between chart requests, and between map updates, while a brush moves
const BINS = 40;
const PRICE = /price|cost|fare|rent|amount|value/i;

// A text field with few values: its description lists them all.
// (A layer described before categories were: a text field whose few top values are all it has.)
function isCategory(f) {
  if (f.category) return true;
  if (f.type === 'bool') return true;
  return f.type === 'text' && Array.isArray(f.top) && f.top.length > 0 && f.top.length < 10 &&
    !(f.distinct > f.top.length);
}

function chartable(f) {
  return f.type === 'number' || f.type === 'time' || f.type === 'date' || f.type === 'bool' || isCategory(f);
}

// Calls fn at most every `wait` ms, the last call always made.
function throttle(fn, wait) {
  let timer = null;
  let last = 0;
  return () => {
    if (timer) return;
    const delay = Math.max(0, last + wait - performance.now());
    timer = setTimeout(() => {
      timer = null;
      last = performance.now();
      fn();
    }, delay);
  };
}

function nextBucket(iso, bucket) {
  const d = new Date(iso + 'T00:00:00Z');
  if (bucket === 'month') d.setUTCMonth(d.getUTCMonth() + 1);
  else d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

export class FilterPanel {
  // options: {onChange() -> Promise (the map updated), bbox() -> 'minlon,minlat,maxlon,maxlat', extra() -> params}
  constructor(parent, {onChange, bbox, extra}) {
    this.onChange = onChange;
    this.bbox = bbox;
    this.extra = extra || (() => ({}));
    this.layer = null;
    this.cards = new Map(); // field name -> {root, charts: Map(part -> chart)}
    this.filters = new Map(); // key ('price', 'started_at:hours', ...) -> filter {field, op, value} or time params
    this.controller = null;
    this.requests = 0;
    this.notifyMap = throttle(() => this.onChange(), THROTTLE);
    this.fetchSoon = throttle(() => this._fetch(), THROTTLE);

    const head = el('h2', '', 'Filters');
    head.id = 'filters-heading';
    this.add = el('select');
    this.add.id = 'filter-add';
    this.add.setAttribute('aria-label', 'add a chart of a field');
    this.add.addEventListener('change', () => {
      if (this.add.value) this.addField(this.add.value);
      this.add.value = '';
    });
    this.inView = input('checkbox', {id: 'filters-in-view', checked: true});
    this.inView.addEventListener('change', () => this.refresh());
    const scope = el('label', 'check');
    scope.append(this.inView, document.createTextNode(' Counts in view only'));
    this.clearAll = el('button', 'button', 'Clear filters');
    this.clearAll.type = 'button';
    this.clearAll.addEventListener('click', () => this.clear());
    this.note = el('p', 'help filters-note');
    this.list = el('div', 'filter-charts');
    this.playbackBox = el('div', 'playback');
    this.playback = new Playback(this.playbackBox, {
      step: (mode, step) => this._playStep(mode, step),
      stop: (mode) => this._playStop(mode),
    });
    this.downloads = el('p', 'downloads');
    this.downloads.append(el('span', 'downloads-title', 'Download:'));
    for (const fmt of ['csv', 'geojson']) {
      const a = el('a', 'button', 'Points (' + (fmt === 'csv' ? 'CSV' : 'GeoJSON') + ')');
      a.id = 'export-' + fmt;
      a.href = '#';
      a.setAttribute('download', '');
      a.addEventListener('click', () => { a.href = this.exportUrl(fmt); });
      this.downloads.append(a);
    }
    this.resultButton = el('button', 'button', 'Analysis result');
    this.resultButton.type = 'button';
    this.resultButton.id = 'export-result';
    this.resultButton.disabled = true;
    this.resultButton.addEventListener('click', () => { if (this.result) saveResult(this.result); });
    this.pngButton = el('button', 'button', 'Map (PNG)');
    this.pngButton.type = 'button';
    this.pngButton.id = 'export-png';
    this.pngButton.addEventListener('click', async () => {
      const blob = await mapPNG(document.getElementById('map'), [...document.querySelectorAll('.legends .legend')].reverse());
      saveBlob((this.layer ? this.layer.name : 'map') + '.png', blob, 'image/png');
    });
    this.downloads.append(this.resultButton, this.pngButton);
    const bar = el('div', 'filters-bar');
    bar.append(this.add, scope, this.clearAll);
    this.root = el('section', 'section filters');
    this.root.id = 'filters';
    this.root.setAttribute('aria-labelledby', 'filters-heading');
    this.root.dataset.requests = '0';
    this.root.dataset.busy = '0';
    this.root.dataset.params = '{}';
    this.root.append(head, bar, this.playbackBox, this.list, this.note, this.downloads);
    const analysis = parent.querySelector('section:last-of-type');
    parent.insertBefore(this.root, analysis);
    const app = document.querySelector('link[href*="css/app.css"]');
    if (app) {
      const link = Object.assign(document.createElement('link'), {rel: 'stylesheet'});
      link.href = app.href.replace(/app\.css(\?.*)?$/, 'filters.css');
      document.head.append(link);
    }
  }

  // ---- the layer and its charts ----

  // Charts shown at first: the colour field, the time field, a price-like field, the first category.
  setLayer(info, colourField) {
    this.playback.stop();
    this.layer = info;
    this.filters.clear();
    this.cards.clear();
    this.list.replaceChildren();
    const fields = info.fields.filter(chartable);
    this.add.replaceChildren(option('', 'Add a chart…'), ...fields.map((f) => option(f.name, f.name)));
    const timeField = info.time && info.time.field;
    const first = [colourField || info.colour_field, timeField,
      (fields.find((f) => f.type === 'number' && (f.unit === 'money' || PRICE.test(f.name))) || {}).name,
      (fields.find(isCategory) || {}).name];
    for (const name of first) if (name && !this.cards.has(name) && fields.some((f) => f.name === name)) this._card(name);
    this.playback.setLayer(info);
    this._changed(false);
    this.refresh();
  }

  addField(name) {
    if (!this.layer || this.cards.has(name)) return;
    this._card(name);
    this.refresh();
  }

  removeField(name) {
    const card = this.cards.get(name);
    if (!card) return;
    card.root.remove();
    this.cards.delete(name);
    let changed = false;
    for (const key of [...this.filters.keys()]) {
      if (key === name || key.startsWith(name + ':')) {
        this.filters.delete(key);
        changed = true;
      }
    }
    if (changed) this._changed(true);
  }

  _card(name) {
    const f = this.layer.fields.find((x) => x.name === name);
    const root = el('div', 'filter-card');
    root.dataset.field = name;
    const title = el('div', 'filter-title');
    const remove = el('button', 'remove', '×');
    remove.type = 'button';
    remove.setAttribute('aria-label', 'remove the chart of ' + name);
    remove.addEventListener('click', () => this.removeField(name));
    title.append(el('span', 'filter-name', name), el('span', 'filter-range'), remove);
    root.append(title);
    const charts = new Map();
    const parts = f.type === 'number' ? ['bins']
      : f.type === 'time' && this.layer.time && this.layer.time.field === name ? ['hours', 'days', 'dates']
        : f.type === 'time' || f.type === 'date' ? ['dates'] : ['values'];
    for (const part of parts) {
      const box = el('div', 'filter-part');
      box.dataset.part = part;
      root.append(box);
      if (part === 'values') {
        charts.set(part, new CategoryList(box, {onToggle: (selected) => this._ticked(name, f, selected)}));
      } else {
        charts.set(part, new BarChart(box, {onBrush: (sel, final) => this._brushed(name, part, sel, final)}));
      }
    }
    this.cards.set(name, {root, charts, title});
    this.list.append(root);
  }

  // ---- filters from the charts ----

  _brushed(name, part, selection, final) {
    const key = part === 'bins' ? name : name + ':' + part;
    const chart = this.cards.get(name).charts.get(part).chart;
    if (!selection) {
      this.filters.delete(key);
    } else if (part === 'bins') {
      this.filters.set(key, [{field: name, op: 'min', value: chart.bins[selection[0]]},
        {field: name, op: 'max', value: chart.bins[selection[1]]}]);
    } else if (part === 'hours') {
      this.filters.set(key, {hours: selection[0] + '-' + (selection[1] - 1)});
    } else if (part === 'days') {
      this.filters.set(key, {days: d3.range(selection[0], selection[1]).join(',')});
    } else if (part === 'dates') {
      const last = chart.dates[selection[1] - 1];
      this.filters.set(key, {from: chart.dates[selection[0]], to: nextBucket(last, chart.bucket)});
    }
    if (part === 'hours' && !this.playback.playing) this.playback.reset();
    this._changed(true, final);
  }

  _ticked(name, f, selected) {
    if (!selected.size) this.filters.delete(name);
    else this.filters.set(name, [{field: name, op: 'in', value: [...selected]}]);
    this._changed(true, true);
  }

  // The query parameters of every filter of the panel.
  params() {
    const fieldFilters = [];
    const time = {};
    for (const value of this.filters.values()) {
      if (Array.isArray(value)) fieldFilters.push(...value);
      else Object.assign(time, value);
    }
    return {...paramsOf(fieldFilters), ...time};
  }

  // The filters as the page state keeps them: [{field, op, value}].
  fieldFilters() {
    return [...this.filters.values()].filter(Array.isArray).flat();
  }

  exportUrl(format) {
    const path = '/api/layers/' + encodeURIComponent(this.layer.name) + '/export';
    return url(path, {format, bbox: this.bbox(), ...this.extra(), ...this.params()});
  }

  clear() {
    this.playback.stop();
    this.filters.clear();
    for (const card of this.cards.values()) {
      for (const chart of card.charts.values()) {
        if (chart instanceof BarChart) { if (chart.chart) chart.show(null); } else chart.clear();
      }
    }
    this._changed(true, true);
  }

  // A filter changed: the range texts, the map (throttled while a brush moves) and the charts.
  _changed(notify, final = true) {
    this.root.dataset.params = JSON.stringify(this.params());
    for (const [name, card] of this.cards) {
      const parts = [...this.filters.entries()].filter(([k]) => k === name || k.startsWith(name + ':'));
      card.title.querySelector('.filter-range').textContent = parts.map(([, v]) => describe(v)).join('; ');
    }
    if (!notify) return;
    if (final) this.onChange();
    else this.notifyMap();
    this.fetchSoon();
  }

  // Move a chart's brush to bars [from, to) as a user would (tests, bench/brush.py).
  brush(field, part, from, to) {
    const card = this.cards.get(field);
    const chart = card && card.charts.get(part);
    if (!chart || !chart.chart) throw new Error('no ' + part + ' chart of ' + field);
    chart.brushTo(from === null ? null : [from, to]);
  }

  // The last analysis result, for its download (JSON, or GeoJSON when it is made of places).
  setResult(result) {
    this.result = result;
    this.resultButton.disabled = !result;
  }

  // ---- the charts' counts ----

  // The map moved: counts in view follow it.
  viewChanged() {
    if (this.inView.checked) this.refresh();
  }

  refresh() {
    this.fetchSoon();
  }

  async _fetch() {
    if (!this.layer || !this.cards.size) return;
    if (this.controller) this.controller.abort();
    const controller = (this.controller = new AbortController());
    const names = [...this.cards.keys()];
    const params = {fields: names.join(','), bins: BINS, ...this.extra(), ...this.params()};
    if (this.inView.checked) params.bbox = this.bbox();
    const path = '/api/layers/' + encodeURIComponent(this.layer.name) + '/histograms';
    this.root.dataset.busy = '1';
    try {
      const answer = await getJSON(path, params, controller.signal);
      if (controller !== this.controller || answer.layer !== this.layer.name) return;
      this._draw(answer);
      this.note.textContent = d3.format(',')(answer.total) + ' points pass every filter' +
        (this.inView.checked ? ' in view' : '');
      this.root.dataset.total = String(answer.total);
      this.root.dataset.requests = String(++this.requests);
    } catch (err) {
      if (isAbort(err)) return;
      this.note.textContent = 'charts: ' + err.message;
    } finally {
      if (controller === this.controller) {
        this.controller = null;
        this.root.dataset.busy = '0';
      }
    }
  }

  _draw(answer) {
    for (const chart of answer.fields) {
      const card = this.cards.get(chart.name);
      if (!card) continue;
      const part = chart.part || (chart.bins ? 'bins' : 'values');
      const view = card.charts.get(part);
      if (view) view.update(chart);
    }
    if (this.playback.playing) this.playback.drawn();
  }

  // ---- playback: the hour-of-day (or date) filter stepped through its range ----

  _hourChart() {
    const field = this.layer.time && this.layer.time.field;
    const card = field && this.cards.get(field);
    return card ? card.charts.get('hours') : null;
  }

  _playStep(mode, step) {
    const field = this.layer.time.field;
    if (!this.cards.has(field)) this._card(field);
    const card = this.cards.get(field);
    if (mode === 'hours') {
      this.filters.set(field + ':hours', {hours: step + '-' + step});
      const chart = card.charts.get('hours');
      if (chart.chart) chart.show([step, step + 1]);
    } else {
      const dates = this.layer.time.dates.map((d) => d[0]);
      const bucket = this.layer.time.bucket || 'day';
      this.filters.set(field + ':dates', {from: dates[step], to: nextBucket(dates[step], bucket)});
      const chart = card.charts.get('dates');
      if (chart.chart) chart.show([step, step + 1]);
    }
    this.root.dataset.params = JSON.stringify(this.params());
    this.fetchSoon();
    return this.onChange();
  }

  _playStop(mode) {
    const field = this.layer && this.layer.time && this.layer.time.field;
    if (!field) return;
    this.filters.delete(field + ':' + mode);
    const card = this.cards.get(field);
    const chart = card && card.charts.get(mode);
    if (chart && chart.chart) chart.show(null);
    this._changed(true, true);
  }
}

// A filter as text: '50 – 300', 'Manhattan, Brooklyn', 'hours 8-17'.
function describe(value) {
  if (!Array.isArray(value)) return Object.entries(value).map(([k, v]) => k + ' ' + v).join(' ');
  const min = value.find((f) => f.op === 'min');
  const max = value.find((f) => f.op === 'max');
  if (min || max) return d3.format('~s')(min ? min.value : -Infinity) + ' – ' + d3.format('~s')(max ? max.value : Infinity);
  return value.map((f) => f.value.join(', ')).join('; ');
}
