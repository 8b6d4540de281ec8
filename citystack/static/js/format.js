// Values as text: numbers, counts, property values and parameter names.

export function formatValue(v) {
  if (!Number.isFinite(v)) return '–';
  if (Number.isInteger(v)) return d3.format(',')(v);
  if (Math.abs(v) >= 1000) return d3.format(',.0f')(v);
  if (Math.abs(v) >= 1) return d3.format(',.2~f')(v);
  return d3.format('.3~g')(v);
}

export const formatCount = d3.format(',');

// 'point' or 'points', after n of them.
export function noun(n, singular, plural = singular + 's') {
  return n === 1 ? singular : plural;
}

// '1 point', '2,048 points'
export function countOf(n, singular, plural) {
  return formatCount(n) + ' ' + noun(n, singular, plural);
}

// A property value of any type: numbers formatted, a missing value as a dash.
export function formatProperty(v) {
  if (v === null || v === undefined) return '–';
  return typeof v === 'number' ? formatValue(v) : String(v);
}

// 'weighted_degree' -> 'weighted degree'
export function words(name) {
  return name.replace(/_/g, ' ');
}

// 'min_shared' -> 'Min shared'
export function labelText(name) {
  return words(name).replace(/^./, (c) => c.toUpperCase());
}

// Text cut to n characters, with an ellipsis when it was longer; on one line.
export function cut(text, n) {
  const line = String(text).replace(/\s+/g, ' ');
  return line.length > n ? line.slice(0, n - 1) + '…' : line;
}
