// Files the page makes itself: an analysis result as JSON, or as GeoJSON when it is
// made of places (clusters: the points with their cluster; network: nodes and edges).

// Save text (or a Blob) as a file.
export function saveBlob(filename, text, type) {
  const url = URL.createObjectURL(text instanceof Blob ? text : new Blob([text], {type}));
  const a = Object.assign(document.createElement('a'), {href: url, download: filename});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// A result as GeoJSON, or null when it has no places of its own (a grid).
export function resultGeoJSON(result) {
  const point = (lon, lat, properties, id) => ({type: 'Feature', id, geometry: {type: 'Point', coordinates: [lon, lat]}, properties});
  if (result.kind === 'clusters' && result.points) {
    const {lon, lat, label} = result.points;
    return {type: 'FeatureCollection', features: lon.map((x, i) => point(x, lat[i], {cluster: label[i]}))};
  }
  if (result.kind === 'network' && result.nodes) {
    const at = new Map(result.nodes.map((n) => [String(n.id), n]));
    const nodes = result.nodes.map((n) => point(n.lon, n.lat, {...n, lon: undefined, lat: undefined}, n.id));
    const edges = result.edges.filter((e) => at.has(String(e.source)) && at.has(String(e.target))).map((e) => {
      const a = at.get(String(e.source));
      const b = at.get(String(e.target));
      return {type: 'Feature', geometry: {type: 'LineString', coordinates: [[a.lon, a.lat], [b.lon, b.lat]]}, properties: e};
    });
    return {type: 'FeatureCollection', features: [...nodes, ...edges]};
  }
  return null;
}

export function saveResult(result) {
  const name = (result.analysis || 'analysis') + '-' + ((result.input && result.input.layer) || 'result');
  const geo = resultGeoJSON(result);
  if (geo) saveBlob(name + '.geojson', JSON.stringify(geo), 'application/geo+json');
  else saveBlob(name + '.json', JSON.stringify(result), 'application/json');
}
