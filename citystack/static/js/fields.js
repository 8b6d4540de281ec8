import {formatProperty} from './format.js';

// What a layer's description says about its fields: [{name, type, min, max, id,
// category, top, ...}, ...]. Names are the file's own (any characters): shown as
// text, sent as query parameters, never used as markup or identifiers.

// The names of the fields a colour or an analysis can use: the numeric ones, or all.
export function fieldNames(layer, numeric = true) {
  return layer.fields.filter((f) => !numeric || f.type === 'number').map((f) => f.name);
}

export function hasField(layer, name) {
  return layer.fields.some((f) => f.name === name);
}

export function fieldOf(layer, name) {
  return (layer && layer.fields.find((f) => f.name === name)) || null;
}

const ID_NAME = /(^|[^a-z])id$|^id([^a-z]|$)|^(uuid|guid|objectid|fid|gid)$/i;
const POSITION_NAME = /^(lat|lon|lng|long|latitude|longitude|x|y)$/i;
const NAME_NAMES = ['name', 'title', 'common_name', 'label', 'description', 'address'];
const OLD_TOP = 10;

// An identifier (never a default colour): flagged so by the server, or named so.
export function isId(field) {
  return Boolean(field.id) || ID_NAME.test(field.name);
}

// What colouring by the field means: 'number', 'category', 'time', 'date', or null (plain text, ids).
export function colourKind(field) {
  if (field.type === 'number') return isId(field) || POSITION_NAME.test(field.name) ? null : 'number';
  if (field.type === 'time') return 'time';
  if (field.type === 'date') return 'date';
  if (field.type === 'bool') return 'category';
  if (field.type === 'text' && !isId(field)) {
    if (field.category) return 'category';
    // a server that does not count distinct values yet lists a field's top ten: fewer are all of them
    const top = field.top || [];
    if (field.distinct === undefined && top.length > 1 && top.length < OLD_TOP) return 'category';
  }
  return null;
}

// The fields the colour menu offers: [{name, kind}], in the layer's order.
export function colourFields(layer) {
  return layer.fields.map((f) => ({name: f.name, kind: colourKind(f)})).filter((f) => f.kind);
}

// The colour field at first: the layer's own choice when it can colour, else the first number, else
// the first category.
export function defaultColour(layer) {
  const usable = colourFields(layer);
  const own = usable.find((f) => f.name === layer.colour_field);
  if (own) return own.name;
  const pick = usable.find((f) => f.kind === 'number') || usable.find((f) => f.kind === 'category');
  return pick ? pick.name : '';
}

// The scales a kind of colour field can use, the first by default.
export const SCALES = {
  number: [['quantile', 'quantiles'], ['linear', 'linear']],
  time: [['hour', 'hour of day'], ['date', 'date']],
  date: [['date', 'date']],
  category: [['category', 'values']],
};

// The field that names a feature: the layer's own, else one named like a name.
export function nameField(layer) {
  if (!layer) return '';
  if (layer.name_field && hasField(layer, layer.name_field)) return layer.name_field;
  for (const wanted of NAME_NAMES) {
    const f = layer.fields.find((x) => x.type === 'text' && x.name.toLowerCase() === wanted);
    if (f) return f.name;
  }
  return '';
}

// A field's value as text: an identifier as it is (no thousands separators), others formatted.
export function valueText(layer, name, value) {
  const field = fieldOf(layer, name);
  if (field && isId(field) && value !== null && value !== undefined) return String(value);
  return formatProperty(value);
}
