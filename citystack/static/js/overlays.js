// Analysis results on the map: a grid as an image, clusters on a canvas, a
// network as an SVG drawn with D3. One overlay at a time, with its own legend.

import {CanvasLayer, SvgLayer} from './layers.js';
import {formatCount, formatValue, renderLegend, hideLegend} from './legend.js';

const PANE = 'analysis';
const NOISE = '#8c96a0';
const FADE = 400; // ms

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function swatchList(items, single) {
  const list = el('ul', single ? 'swatches single' : 'swatches');
  for (const [colour, text] of items) {
    const item = el('li');
    const sw = el('span', 'swatch');
    sw.style.background = colour;
    item.append(sw, document.createTextNode(text));
    list.append(item);
  }
  return list;
}

// ---- grid: an image anchored to its bbox ----

const GRID_COLOURS = {
  heatmap: (t) => d3.interpolateInferno(0.2 + 0.8 * t),
  interpolate: (t) => d3.interpolateRdYlBu(1 - t),
};

// The raw values behind a grid's 0..1 values (e.g. density), when the result carries them.
function rawGrid(grid) {
  for (const [key, value] of Object.entries(grid)) {
    if (key !== 'values' && Array.isArray(value) && Array.isArray(value[0])) return {key, rows: value};
  }
  return null;
}

function gridImage(grid, colour, alpha) {
  const canvas = document.createElement('canvas');
  canvas.width = grid.nx;
  canvas.height = grid.ny;
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(grid.nx, grid.ny);
  for (let j = 0; j < grid.ny; j++) {
    const row = grid.values[j] || [];
    for (let i = 0; i < grid.nx; i++) {
      const v = row[i];
      if (v === null || v === undefined || !Number.isFinite(v)) continue;
      const c = d3.rgb(colour(v));
      const k = 4 * (j * grid.nx + i);
      image.data[k] = c.r;
      image.data[k + 1] = c.g;
      image.data[k + 2] = c.b;
      image.data[k + 3] = Math.round(255 * alpha(v));
    }
  }
  ctx.putImageData(image, 0, 0);
  return canvas;
}

function gridLegend(target, result) {
  const grid = result.grid;
  const colour = GRID_COLOURS[result.analysis] || d3.interpolateViridis;
  const raw = rawGrid(grid);
  let labels = ['low', '', 'high'];
  let title = result.title || result.analysis || 'grid';
  let note = '';
  if (result.analysis === 'heatmap') {
    title = 'Heatmap: density';
    note = result.weight ? 'weighted by ' + result.weight : '';
  } else if (result.analysis === 'interpolate') {
    title = 'Interpolated ' + (result.field || (result.params && result.params.field) || 'value');
  }
  if (raw) {
    const flat = raw.rows.flat().filter((v) => v !== null && Number.isFinite(v));
    if (flat.length) {
      let [lo, hi] = d3.extent(flat);
      let units = result.units || '';
      if (/per m²$/.test(units)) {
        // densities per square metre are tiny numbers: say per km²
        lo *= 1e6;
        hi *= 1e6;
        units = units.replace(/per m²$/, 'per km²');
      }
      if (result.analysis === 'heatmap') lo = 0;
      labels = [formatValue(lo), units, formatValue(hi)];
    }
  }
  renderLegend(target, {title, note, labels, interpolator: colour, data: {kind: 'grid'}});
}

// ---- clusters: points coloured by cluster, hulls around them ----

function clusterColour(label) {
  return label < 0 ? NOISE : d3.schemeTableau10[label % 10];
}

const ClustersLayer = CanvasLayer.extend({
  setResult(result) {
    const {lon, lat, label} = result.points;
    this.px = new Float64Array(lon.length);
    this.py = new Float64Array(lon.length);
    for (let i = 0; i < lon.length; i++) {
      const p = this.project0(lon[i], lat[i]);
      this.px[i] = p.x;
      this.py[i] = p.y;
    }
    this.labels = label;
    this.hulls = (result.clusters || []).map((c) => ({
      label: c.label,
      ring: (c.hull || []).map(([x, y]) => this.project0(x, y)),
    }));
    return this.redraw();
  },

  draw(ctx, size, t) {
    if (!this.px) return;
    const r = Math.max(1.5, Math.min(5, 1.5 + (t.zoom - 13) * 0.8));
    // points, one path per colour; noise first, underneath
    const groups = d3.group(d3.range(this.px.length), (i) => this.labels[i]);
    const keys = [...groups.keys()].sort((a, b) => a - b);
    for (const key of keys) {
      ctx.beginPath();
      for (const i of groups.get(key)) {
        const x = this.px[i] * t.scale + t.dx;
        const y = this.py[i] * t.scale + t.dy;
        if (x < -r || y < -r || x > size.x + r || y > size.y + r) continue;
        ctx.moveTo(x + r, y);
        ctx.arc(x, y, r, 0, 2 * Math.PI);
      }
      ctx.globalAlpha = key < 0 ? 0.45 : 0.9;
      ctx.fillStyle = clusterColour(key);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    for (const hull of this.hulls) {
      if (hull.ring.length < 3) continue;
      ctx.beginPath();
      hull.ring.forEach((p, k) => {
        const x = p.x * t.scale + t.dx;
        const y = p.y * t.scale + t.dy;
        if (k) ctx.lineTo(x, y);
        else ctx.moveTo(x, y);
      });
      ctx.closePath();
      const colour = d3.color(clusterColour(hull.label));
      colour.opacity = 0.12;
      ctx.fillStyle = colour.formatRgb();
      ctx.fill();
      ctx.lineWidth = 2;
      ctx.strokeStyle = clusterColour(hull.label);
      ctx.stroke();
    }
  },
});

function clustersLegend(target, result) {
  target.replaceChildren();
  const clusters = [...(result.clusters || [])].sort((a, b) => b.size - a.size);
  const noise = result.points.label.filter((l) => l < 0).length;
  target.append(el('div', 'legend-title', 'Clusters'));
  target.append(el('div', 'legend-note', formatCount(clusters.length) + (clusters.length === 1 ? ' cluster' : ' clusters') +
    (result.method ? ' (' + result.method + ')' : '')));
  const items = clusters.slice(0, 6).map((c) => [clusterColour(c.label), 'cluster ' + c.label + ': ' + formatCount(c.size) + ' points']);
  if (clusters.length > 6) items.push(['transparent', '… and ' + (clusters.length - 6) + ' more']);
  items.push([NOISE, 'noise: ' + formatCount(noise) + ' points']);
  target.append(swatchList(items, true));
  target.dataset.kind = 'clusters';
  target.hidden = false;
}

// ---- network: places and co-visit links, in SVG with D3 transitions ----

const NetworkLayer = SvgLayer.extend({
  // handlers: {hover(node, event), leave()}
  setResult(result, handlers) {
    this.handlers = handlers;
    const nodes = result.nodes.map((n) => ({...n, key: String(n.id)}));
    const byKey = new Map(nodes.map((n) => [n.key, n]));
    this.edges = result.edges
      .map((e) => ({...e, s: String(e.source), t: String(e.target)}))
      .filter((e) => byKey.has(e.s) && byKey.has(e.t));
    for (const n of nodes) {
      const p = this.project0(n.lon, n.lat);
      n.px = p.x;
      n.py = p.y;
    }
    this.byKey = byKey;
    this.score = ['links', 'weighted_degree', 'betweenness'].includes(result.params && result.params.score)
      ? result.params.score : 'links';
    const maxScore = d3.max(nodes, (n) => n[this.score]) || 1;
    this.radius = d3.scaleSqrt().domain([0, maxScore]).range([2.5, 15]);
    const weights = d3.extent(this.edges, (e) => e.weight);
    this.opacity = d3.scaleSqrt().domain(weights[0] === undefined ? [0, 1] : weights).range([0.12, 0.8]);
    this.width = d3.scaleSqrt().domain(weights[0] === undefined ? [0, 1] : weights).range([0.6, 3.2]);
    this.categories = d3.scaleOrdinal(d3.schemeTableau10);
    // big circles first, so that small ones stay clickable on top
    this.nodes = nodes.sort((a, b) => b[this.score] - a[this.score]);
    this.focus = null;
    this.render(false);
    return this;
  },

  onAdd(map) {
    SvgLayer.prototype.onAdd.call(this, map);
    const svg = d3.select(this._el);
    this.edgeGroup = svg.append('g').attr('class', 'edges');
    this.nodeGroup = svg.append('g').attr('class', 'nodes');
    if (this.nodes) this.render(false);
  },

  // Keep only `key`'s links and linked places (null: everything).
  setFocus(key) {
    this.focus = key;
    this.render(true);
  },

  render(animate) {
    if (!this.nodeGroup || !this.nodes) return;
    const focus = this.focus;
    let nodes = this.nodes;
    let edges = this.edges;
    if (focus !== null) {
      edges = edges.filter((e) => e.s === focus || e.t === focus);
      const keep = new Set([focus, ...edges.map((e) => e.s), ...edges.map((e) => e.t)]);
      nodes = nodes.filter((n) => keep.has(n.key));
    }
    const duration = animate ? FADE : 0;
    const t = this.transform();
    const x = (n) => n.px * t.scale + t.dx;
    const y = (n) => n.py * t.scale + t.dy;
    const edgeKey = (e) => e.s + '|' + e.t;

    this.edgeGroup
      .selectAll('line.edge:not(.leaving)')
      .data(edges, edgeKey)
      .join(
        (enter) => enter.append('line')
          .attr('class', 'edge')
          .attr('data-source', (e) => e.s)
          .attr('data-target', (e) => e.t)
          .attr('stroke-width', (e) => this.width(e.weight))
          .attr('opacity', 0),
        (update) => update,
        (exit) => exit.classed('leaving', true)
          .call((s) => s.transition().duration(duration).attr('opacity', 0).remove()),
      )
      .attr('x1', (e) => x(this.byKey.get(e.s)))
      .attr('y1', (e) => y(this.byKey.get(e.s)))
      .attr('x2', (e) => x(this.byKey.get(e.t)))
      .attr('y2', (e) => y(this.byKey.get(e.t)))
      .transition().duration(duration)
      .attr('opacity', (e) => (focus === null ? this.opacity(e.weight) : Math.max(0.5, this.opacity(e.weight))));

    this.nodeGroup
      .selectAll('circle.node:not(.leaving)')
      .data(nodes, (n) => n.key)
      .join(
        (enter) => enter.append('circle')
          .attr('class', 'node')
          .attr('data-id', (n) => n.key)
          .attr('r', (n) => this.radius(n[this.score]))
          .attr('fill', (n) => this.categories(n.category))
          .attr('opacity', 0)
          .on('click', (event, n) => {
            L.DomEvent.stopPropagation(event);
            this.setFocus(n.key);
          })
          .on('mousemove', (event, n) => this.handlers.hover(n, event))
          .on('mouseleave', () => this.handlers.leave()),
        (update) => update,
        (exit) => exit.classed('leaving', true)
          .call((s) => s.transition().duration(duration).attr('opacity', 0).remove()),
      )
      .classed('focused', (n) => n.key === focus)
      .attr('cx', x)
      .attr('cy', y)
      .transition().duration(duration)
      .attr('opacity', 1);
  },

  // after every move: put shapes where their places are now
  position(svg, size, t) {
    if (!this.nodeGroup) return;
    const x = (n) => n.px * t.scale + t.dx;
    const y = (n) => n.py * t.scale + t.dy;
    this.nodeGroup.selectAll('circle.node').attr('cx', x).attr('cy', y);
    this.edgeGroup.selectAll('line.edge')
      .attr('x1', (e) => x(this.byKey.get(e.s)))
      .attr('y1', (e) => y(this.byKey.get(e.s)))
      .attr('x2', (e) => x(this.byKey.get(e.t)))
      .attr('y2', (e) => y(this.byKey.get(e.t)));
  },
});

function networkLegend(target, result, layer) {
  target.replaceChildren();
  target.append(el('div', 'legend-title', 'Co-visit network'));
  target.append(el('div', 'legend-note',
    formatCount(result.nodes.length) + ' places, ' + formatCount(result.edges.length) + ' links; size: ' +
    layer.score.replace('_', ' ') + '. Click a place to see its links.'));
  const counts = d3.rollups(result.nodes, (v) => v.length, (n) => n.category).sort((a, b) => b[1] - a[1]);
  const items = counts.slice(0, 8).map(([c]) => [layer.categories(c), c === null ? '(none)' : String(c)]);
  target.append(swatchList(items));
  target.dataset.kind = 'network';
  target.hidden = false;
}

// ---- the overlay manager ----

export class Overlays {
  // legendEl: the overlay's legend; tooltip: a Tooltip for places
  constructor(map, legendEl, tooltip) {
    this.map = map;
    this.legendEl = legendEl;
    this.tooltip = tooltip;
    this.layer = null;
    this.kind = null;
    this.hovering = false;
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
    hideLegend(this.legendEl);
    document.body.dataset.overlay = '';
  }

  // Draw a result; returns false for kinds it does not know.
  show(result) {
    this.clear();
    const kind = result.kind;
    if (kind === 'grid' && result.grid) {
      const g = result.grid;
      const colour = GRID_COLOURS[result.analysis] || d3.interpolateViridis;
      // a heatmap fades out where there is little; other grids are evenly translucent
      const alpha = result.analysis === 'heatmap' ? (v) => 0.82 * Math.sqrt(v) : () => 0.62;
      const image = gridImage(g, colour, alpha).toDataURL();
      const bounds = [[g.bbox[1], g.bbox[0]], [g.bbox[3], g.bbox[2]]];
      this.layer = L.imageOverlay(image, bounds, {pane: PANE, className: 'grid-overlay', interactive: false});
      this.layer.addTo(this.map);
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
          this.tooltip.show(event.clientX, event.clientY, n.name || String(n.id), [
            ['category', n.category === null ? '–' : String(n.category)],
            ['links', formatValue(n.links)],
            ['weighted degree', formatValue(n.weighted_degree)],
            ['betweenness', formatValue(n.betweenness)],
          ]);
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
