// What the page asks of the API for a view of a layer: the bins of the view
// first (cheap, and they count the points), then its points when there are few
// enough. Reads nothing from the page: the request is made of its arguments.

import * as api from './api.js';

const CELLS = 64;

// The `properties` parameter for these field names ('' = every field: a name with a comma cannot be listed).
export function propertiesParam(names) {
  const unique = [...new Set(names.filter(Boolean))];
  if (!unique.length || unique.some((n) => n.includes(','))) return '';
  return unique.join(',');
}

// query: {layer, bbox, filters: the filter and time parameters, binsField: the field whose mean colours
// bins ('' for counts), properties: the field names the points need}; limits: {binsThreshold, maxLimit};
// options: {signal, onProgress}. Resolves with {mode: 'bins', bins} or {mode: 'points', features}, and total.
export async function loadView({layer, bbox, filters, binsField, properties}, limits, options) {
  const params = {bbox, ...filters};
  const bins = await api.bins(layer.name, {...params, cells: CELLS, field: binsField}, options);
  if (bins.total > limits.binsThreshold) return {mode: 'bins', bins, total: bins.total};
  const collection = await api.features(layer.name,
    {...params, limit: limits.maxLimit, properties: propertiesParam(properties)}, options);
  return {mode: 'points', features: collection.features, total: bins.total};
}
