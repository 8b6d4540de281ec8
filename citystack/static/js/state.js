// The page's one shared state: what is looked at and how. The menu, the legend,
// the filter panel, the permalink and the analysis panel change it; main.js
// listens and makes the requests. Everything that narrows the data (filters and
// time) turns into the API's query parameters here, for every request.
//
// API
//   state                       the state object (read it; change it only through the functions below):
//     layer     the chosen layer's description (GET /api/layers/{layer}) or null
//     view      {lat, lon, zoom} of the map (kept by main.js; no emit on pans)
//     colour    {field, scale, domain}: field = public field name or '';
//               scale = 'quantile' | 'linear' (numbers), 'category', 'hour' | 'date' (times);
//               domain = the kept colour scale (set by the drawing, null = take it from the next view)
//     filters   [{field, op, value}]: op 'in' | 'not_in' (value: an array of values) or 'min' | 'max'
//               (value: a number or an ISO date/time text); at most one filter per (field, op)
//     time      {from, to, days, hours}: ISO instants (from inclusive, to exclusive), days 'Mon,Tue'
//               or '0,1', hours '17' | '8-17' | '22-4'; '' = not set
//     analysis  {name, params}: the open (run and shown) analysis and its parameter values; name '' = none
//   subscribe(fn) -> unsubscribe     fn(state, changed: Set of top-level keys, source) after each change
//   update(patch, source)            shallow-merge top-level keys of patch (e.g. {colour: {...}}) and emit
//   setLayer(layer, source)          a new layer: its filters, time and analysis are cleared; one emit
//   setFilter(field, op, value)      set (value null/undefined/[] removes) the filter of (field, op)
//   toggleValue(field, value)        add or remove a value of the field's 'in' filter
//   clearFilters(field?)             remove the filters of one field, or all
//   filtersOf(field) -> [filter]     the filters of one field
//   filterParams({exclude}) -> {}    the query parameters of the filters and the time, e.g.
//                                    {Genus: ['QUERCUS', 'ACER'], Genus_not: [...], Trunk_Diameter_min: '3',
//                                     from: '2014-04-01', days: 'Sat,Sun'}; exclude: a field name (or a
//                                    list of them, or 'from' | 'to' | 'days' | 'hours') whose own filters
//                                    are left out (crossfilter charts). Arrays are repeated keys (http.js
//                                    query() sends them so).
//   Sources main.js uses: 'select' (a layer set up, perhaps from a permalink: one emit with layer,
//   colour, filters, time and analysis together), 'menu', 'legend', 'analysis'. Any change of filters or
//   time (whatever its source) updates the map 60 ms later and goes into the permalink; the domain of
//   the colour is written without an emit.

export const state = {
  layer: null,
  view: null,
  colour: {field: '', scale: 'quantile', domain: null},
  filters: [],
  time: {from: '', to: '', days: '', hours: ''},
  analysis: {name: '', params: {}},
};

const listeners = new Set();

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function emit(changed, source) {
  for (const fn of [...listeners]) fn(state, changed, source);
}

export function update(patch, source = '') {
  const changed = new Set(Object.keys(patch));
  Object.assign(state, patch);
  emit(changed, source);
}

export function setLayer(layer, source = '') {
  Object.assign(state, {
    layer,
    filters: [],
    time: {from: '', to: '', days: '', hours: ''},
    analysis: {name: '', params: {}},
  });
  emit(new Set(['layer', 'filters', 'time', 'analysis']), source);
}

const empty = (v) => v === null || v === undefined || v === '' || (Array.isArray(v) && !v.length);

export function setFilter(field, op, value, source = '') {
  const rest = state.filters.filter((f) => !(f.field === field && f.op === op));
  state.filters = empty(value) ? rest : [...rest, {field, op, value}];
  emit(new Set(['filters']), source);
}

export function filtersOf(field) {
  return state.filters.filter((f) => f.field === field);
}

export function toggleValue(field, value, source = '') {
  const current = state.filters.find((f) => f.field === field && f.op === 'in');
  const values = current ? [...current.value] : [];
  const i = values.findIndex((v) => String(v) === String(value));
  if (i >= 0) values.splice(i, 1);
  else values.push(value);
  setFilter(field, 'in', values, source);
}

export function clearFilters(field, source = '') {
  state.filters = field === undefined ? [] : state.filters.filter((f) => f.field !== field);
  emit(new Set(['filters']), source);
}

const SUFFIX = {in: '', not_in: '_not', min: '_min', max: '_max'};

export function filterParams({exclude} = {}) {
  return paramsOf(state.filters, state.time, exclude);
}

// The query parameters of some filters and a time (see filterParams).
export function paramsOf(filters, time = {}, exclude = undefined) {
  const left = new Set(Array.isArray(exclude) ? exclude : exclude === undefined ? [] : [exclude]);
  const out = {};
  for (const f of filters) {
    if (left.has(f.field) || !(f.op in SUFFIX)) continue;
    const key = f.field + SUFFIX[f.op];
    out[key] = Array.isArray(f.value) ? f.value.map(String) : String(f.value);
  }
  for (const key of ['from', 'to', 'days', 'hours']) {
    if (!empty(time[key]) && !left.has(key)) out[key] = time[key];
  }
  return out;
}
