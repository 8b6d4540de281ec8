// The citystack API's routes, as the page uses them. JSON answers resolve to
// their body; streamed ones (options: {signal, onProgress}) to their result.

import {getJSON, stream} from './http.js';

const layerPath = (name, sub = '') => '/api/layers/' + encodeURIComponent(name) + sub;

export const layers = () => getJSON('/api/layers');

export const layer = (name) => getJSON(layerPath(name));

export const bins = (name, params, options) => stream(layerPath(name, '/bins'), params, options);

export const features = (name, params, options) => stream(layerPath(name, '/features'), params, options);

export const analyses = () => getJSON('/api/analyses');

export const analysis = (name, params, options) =>
  stream('/api/analyses/' + encodeURIComponent(name), params, options);
