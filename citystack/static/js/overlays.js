// Analysis results on the map, one at a time, each with its legend: a grid as
// an image (grid.js), clusters on a canvas (clusters.js), a network in SVG (network.js).

import {ClustersLayer, clustersLegend} from './clusters.js';
import {clear} from './dom.js';
import {gridLegend, gridOverlay} from './grid.js';
import {NetworkLayer, networkLegend, placeText} from './network.js';

const PANE = 'analysis';

export class Overlays {
  // legendEl: the overlay's legend; tooltip: a Tooltip for places
  constructor(map, legendEl, tooltip) {
    this.map = map;
    this.legendEl = legendEl;
    this.tooltip = tooltip;
    this.layer = null;
    this.clear();
    map.createPane(PANE).style.zIndex = 450;
    map.on('click', () => {
      if (this.kind === 'network' && this.layer.focus !== null) this.layer.setFocus(null);
    });
  }

  clear() {
    if (this.layer) this.map.removeLayer(this.layer);
    this.layer = null;
    this.kind = null;
    this.hovering = false;
    clear(this.legendEl);
    document.body.dataset.overlay = '';
  }

  // Draw a result; returns false for kinds it does not know.
  show(result) {
    this.clear();
    const kind = result.kind;
    if (kind === 'grid' && result.grid) {
      this.layer = gridOverlay(result, PANE).addTo(this.map);
      gridLegend(this.legendEl, result);
    } else if (kind === 'clusters' && result.points) {
      this.layer = new ClustersLayer({pane: PANE, id: 'overlay-canvas'}).addTo(this.map);
      this.layer.setResult(result);
      clustersLegend(this.legendEl, result);
    } else if (kind === 'network' && result.nodes) {
      this.layer = new NetworkLayer({pane: PANE, id: 'network', className: 'network'}).addTo(this.map);
      this.layer.setResult(result, {
        hover: (n, event) => {
          this.hovering = true;
          this.tooltip.show(event.clientX, event.clientY, placeText(n));
        },
        leave: () => {
          this.hovering = false;
          this.tooltip.hide();
        },
      });
      networkLegend(this.legendEl, result, this.layer);
    } else {
      return false;
    }
    this.kind = kind;
    document.body.dataset.overlay = kind;
    return true;
  }
}
