// Points from the features API as Apache Arrow (format=arrow): the page's binary transport.
//
// The apache-arrow package (served from static/vendor, copied there by `make vendor`)
// is loaded on first use, so a page that never asks for Arrow never loads it. Its
// single-file build sets `window.Arrow`; the page's Content-Security-Policy allows it
// as one of the app's own scripts.

import {ApiError, url} from './http.js';

export const ARROW = 'application/vnd.apache.arrow.stream';
const LIBRARY = new URL('../vendor/apache-arrow/Arrow.es2015.min.js', import.meta.url).href;
let loading = null;

// The apache-arrow module object (resolves once the script has run).
export function arrowLibrary() {
  if (window.Arrow && window.Arrow.tableFromIPC) return Promise.resolve(window.Arrow);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = LIBRARY;
      script.onload = () => resolve(window.Arrow);
      script.onerror = () => {
        loading = null;
        reject(new Error('cannot load ' + LIBRARY + ' (run `make vendor`)'));
      };
      document.head.appendChild(script);
    });
  }
  return loading;
}

// The `next` URL of a `Link: <URL>; rel="next"` header, or null.
export function nextLink(header) {
  const match = /<([^>]*)>\s*;\s*rel="?next"?/.exec(header || '');
  return match ? match[1] : null;
}

// One page of features: {table, lon, lat, count, next}. `lon` and `lat` are Float64Arrays,
// `table` the Arrow table (table.getChild(name) for a property: .get(i), .toArray()).
export async function fetchArrow(path, params, {signal} = {}) {
  const response = await fetch(url(path, {...params, format: 'arrow'}), {signal, headers: {Accept: ARROW}});
  if (!response.ok) {
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      // not JSON
    }
    throw new ApiError(((body && body.detail) || response.statusText) + ' (' + response.status + ')', response.status);
  }
  const [Arrow, buffer] = await Promise.all([arrowLibrary(), response.arrayBuffer()]);
  return readTable(Arrow.tableFromIPC(new Uint8Array(buffer)), nextLink(response.headers.get('Link')));
}

export function readTable(table, next = null) {
  return {
    table,
    lon: table.getChild('lon').toArray(),
    lat: table.getChild('lat').toArray(),
    count: table.numRows,
    next,
  };
}

// A property's values as a plain array (null for NULL; dictionary columns give their text).
export function values(table, name) {
  const column = table.getChild(name);
  if (!column) return null;
  const out = new Array(column.length);
  for (let i = 0; i < out.length; i++) out[i] = column.get(i);
  return out;
}
