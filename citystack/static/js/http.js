// HTTP for the API's routes (api.js): query strings, JSON, and progress streams.
//
// A progress stream is the same request sent with `Accept: text/event-stream`:
// the server answers Server-Sent Events, `progress` events while it works and
// one `result` or `error` event at the end. EventSource cannot set headers,
// so streams are read with fetch and a small SSE parser.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

// 'a=1&bbox=1,2,3,4&g=x&g=y' from {a: 1, bbox: '1,2,3,4', g: ['x', 'y']}: an array is a
// repeated key; empty values are left out.
export function query(params) {
  const parts = [];
  for (const [key, given] of Object.entries(params)) {
    for (const value of Array.isArray(given) ? given : [given]) {
      if (value === undefined || value === null || value === '') continue;
      const text = encodeURIComponent(String(value)).replace(/%2C/g, ',');
      parts.push(encodeURIComponent(key) + '=' + text);
    }
  }
  return parts.join('&');
}

export function url(path, params) {
  const q = query(params || {});
  return q ? path + '?' + q : path;
}

// What an error body (JSON answer or `error` event) says, else `fallback`.
function detail(body, fallback) {
  return (body && (body.detail || body.error)) || fallback;
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    // not JSON: say the status text
  }
  const text = detail(body, response.statusText || 'request failed');
  return new ApiError(text + ' (' + response.status + ')', response.status);
}

export async function getJSON(path, params, signal) {
  const response = await fetch(url(path, params), {signal, headers: {Accept: 'application/json'}});
  if (!response.ok) throw await failure(response);
  return response.json();
}

// Resolves with the data of the `result` event; calls onProgress(message, fraction)
// for each `progress` event; rejects with an ApiError for an `error` event.
export async function stream(path, params, {signal, onProgress} = {}) {
  const response = await fetch(url(path, params), {signal, headers: {Accept: 'text/event-stream'}});
  if (!response.ok) throw await failure(response);
  if (!(response.headers.get('Content-Type') || '').startsWith('text/event-stream')) {
    return response.json();
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let scanned = 0;
  try {
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n', scanned)) >= 0) {
        const event = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        scanned = 0;
        if (!event) continue;
        if (event.type === 'progress') {
          if (onProgress) onProgress(event.data.message, event.data.fraction);
        } else if (event.type === 'result') {
          return event.data;
        } else if (event.type === 'error') {
          throw new ApiError(detail(event.data, 'the server failed'), (event.data || {}).status);
        }
      }
      scanned = Math.max(0, buffer.length - 1);
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  throw new ApiError('the server closed the stream before answering', 0);
}

// One event block: 'event: NAME' and 'data: ...' lines; lines starting with ':' are comments.
export function parseEvent(block) {
  let type = 'message';
  const data = [];
  for (const raw of block.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line || line[0] === ':') continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return null;
  const text = data.join('\n');
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    // plain text data
  }
  return {type, data: parsed};
}

export function isAbort(err) {
  return err && err.name === 'AbortError';
}
