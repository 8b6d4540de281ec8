// Field filters as the page's state keeps them, and their query parameters.
//
// Stand-in for the shared page state (state.js, P1): filters are
// [{field, op: 'in' | 'not_in' | 'min' | 'max', value}] (in / not_in: an array of
// values), turned into the API's query syntax: FIELD=v (repeated), FIELD_not=v,
// FIELD_min=, FIELD_max=. When state.js lands, this module is the one import to change.

export function filterParams(filters) {
  const out = {};
  for (const {field, op, value} of filters) {
    if (op === 'in' || op === 'not_in') {
      const key = op === 'in' ? field : field + '_not';
      out[key] = [...(out[key] || []), ...value.map(String)];
    } else if (op === 'min' || op === 'max') {
      out[field + '_' + op] = String(value);
    }
  }
  return out;
}
