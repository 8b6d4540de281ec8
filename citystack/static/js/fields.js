// What a layer's description says about its fields: [{name, type}, ...].

// The names of the fields a colour or an analysis can use: the numeric ones, or all.
export function fieldNames(layer, numeric = true) {
  return layer.fields.filter((f) => !numeric || f.type === 'number').map((f) => f.name);
}

export function hasField(layer, name) {
  return layer.fields.some((f) => f.name === name);
}
