// What the page asks of the API for a view of a layer: the bins of the view
// first (cheap, and they count the points), then its points when there are few
// enough. Reads nothing from the page: the request is made of its arguments.

import * as api from './api.js';
import {hasField} from './fields.js';

const CELLS = 64;

// query: {layer, field, bbox, time: {days, hours}}; limits: {binsThreshold, maxLimit};
// options: {signal, onProgress}. Resolves with {mode: 'bins', bins} or {mode: 'points', features}, and total.
export async function loadView({layer, field, bbox, time}, limits, options) {
  const params = {bbox, ...time};
  const bins = await api.bins(layer.name, {...params, cells: CELLS, field}, options);
  if (bins.total > limits.binsThreshold) return {mode: 'bins', bins, total: bins.total};
  const properties = [hasField(layer, 'name') ? 'name' : '', field].filter(Boolean).join(',');
  const collection = await api.features(layer.name, {...params, limit: limits.maxLimit, properties}, options);
  return {mode: 'points', features: collection.features, total: bins.total};
}
