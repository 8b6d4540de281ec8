// Hovering the points layer: a tooltip with what is under the pointer (a
// point's properties, a cell's counts) and a ring around the point.

import {clientPoint} from './layers.js';
import {countOf, formatProperty, formatValue} from './format.js';

// The tooltip text of a hit of PointsLayer.hit: {title, rows}.
function hitText(hit, binsField) {
  if (hit.feature) {
    const f = hit.feature;
    const props = f.properties || {};
    const title = props.name === undefined || props.name === null ? 'feature ' + f.id : String(props.name);
    const rows = Object.entries(props).filter(([k]) => k !== 'name').map(([k, v]) => [k, formatProperty(v)]);
    return {title, rows};
  }
  const p = hit.cell.props;
  const rows = binsField
    ? [['mean ' + binsField, formatValue(p.mean)], ['min', formatValue(p.min)], ['max', formatValue(p.max)]]
    : [];
  return {title: countOf(p.count, 'point'), rows};
}

// paused(): true while something else (an overlay) holds the tooltip.
export function hoverPoints(map, points, tooltip, ring, paused) {
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
    tooltip.show(e.originalEvent.clientX, e.originalEvent.clientY, hitText(hit, points.bins && points.bins.field));
  });
  map.on('mouseout movestart zoomstart', hide);
}
