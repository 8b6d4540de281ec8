// Hovering the points layer: a tooltip with what is under the pointer (a
// point's fields, a cell's counts) and a ring around the point; a click on a
// point pins it (onPin).

import {clientPoint} from './layers.js';
import {valueText} from './fields.js';
import {countOf, cut, formatValue} from './format.js';

// The tooltip text of a point: the name field's value first, then the fields asked for (long text cut).
export function pointText(feature, {layer, nameField, fields}) {
  const props = feature.properties || {};
  const named = nameField && props[nameField] !== null && props[nameField] !== undefined;
  const title = named ? cut(String(props[nameField]), 80) : 'feature ' + feature.id;
  const rows = fields.filter((k) => k !== nameField && k in props).map((k) => [k, cut(valueText(layer, k, props[k]), 60)]);
  return {title, rows};
}

// The tooltip text of a bins cell.
function cellText(cell, binsField) {
  const p = cell.props;
  const rows = binsField
    ? [['mean ' + binsField, formatValue(p.mean)], ['min', formatValue(p.min)], ['max', formatValue(p.max)]]
    : [];
  return {title: countOf(p.count, 'point'), rows};
}

// paused(): true while something else (an overlay) holds the tooltip; describe(): {layer, nameField, fields};
// onPin(hit): a click on a point.
export function hoverPoints(map, points, tooltip, ring, {paused, describe, onPin}) {
  const hide = () => {
    tooltip.hide();
    ring.hidden = true;
  };
  map.on('mousemove', (e) => {
    if (paused()) return;
    const hit = points.hit(e.containerPoint);
    map.getContainer().classList.toggle('over-point', Boolean(hit));
    if (!hit) {
      hide();
      return;
    }
    ring.hidden = !hit.feature;
    if (hit.feature) {
      const at = clientPoint(map, hit.x, hit.y);
      ring.style.left = at.x + 'px';
      ring.style.top = at.y + 'px';
    }
    const text = hit.feature ? pointText(hit.feature, describe()) : cellText(hit.cell, points.bins && points.bins.field);
    tooltip.show(e.originalEvent.clientX, e.originalEvent.clientY, text);
  });
  map.on('click', (e) => {
    if (paused()) return;
    const hit = points.hit(e.containerPoint);
    if (hit && hit.feature) onPin(hit.feature);
  });
  map.on('mouseout movestart zoomstart', hide);
}
