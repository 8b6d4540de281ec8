// A network result on the map: places and co-visit links in SVG, drawn with D3
// transitions; a click on a place keeps only its links. And its legend.

import {categoryScale} from './colours.js';
import {countOf, formatProperty, formatValue, words} from './format.js';
import {SvgLayer} from './layers.js';
import {swatchLegend} from './legend.js';

const FADE = 400; // ms
// What a place's size can show, the first by default.
const SCORES = ['links', 'weighted_degree', 'betweenness'];

export const NetworkLayer = SvgLayer.extend({
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
    const score = result.params && result.params.score;
    this.score = SCORES.includes(score) ? score : SCORES[0];
    const maxScore = d3.max(nodes, (n) => n[this.score]) || 1;
    this.radius = d3.scaleSqrt().domain([0, maxScore]).range([2.5, 15]);
    const weights = d3.extent(this.edges, (e) => e.weight);
    const domain = weights[0] === undefined ? [0, 1] : weights;
    this.opacity = d3.scaleSqrt().domain(domain).range([0.12, 0.8]);
    this.width = d3.scaleSqrt().domain(domain).range([0.6, 3.2]);
    this.categories = categoryScale();
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
    const leave = (exit) => exit.classed('leaving', true)
      .call((s) => s.transition().duration(duration).attr('opacity', 0).remove());

    const lines = this.edgeGroup
      .selectAll('line.edge:not(.leaving)')
      .data(edges, (e) => e.s + '|' + e.t)
      .join(
        (enter) => enter.append('line')
          .attr('class', 'edge')
          .attr('data-source', (e) => e.s)
          .attr('data-target', (e) => e.t)
          .attr('stroke-width', (e) => this.width(e.weight))
          .attr('opacity', 0),
        (update) => update,
        leave,
      );
    const circles = this.nodeGroup
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
        leave,
      )
      .classed('focused', (n) => n.key === focus);
    this._place(lines, circles, this.transform());
    lines.transition().duration(duration)
      .attr('opacity', (e) => (focus === null ? this.opacity(e.weight) : Math.max(0.5, this.opacity(e.weight))));
    circles.transition().duration(duration).attr('opacity', 1);
  },

  // after every move: put shapes where their places are now
  position(svg, size, t) {
    if (!this.nodeGroup) return;
    this._place(this.edgeGroup.selectAll('line.edge'), this.nodeGroup.selectAll('circle.node'), t);
  },

  _place(lines, circles, t) {
    const x = (key) => t.x(this.byKey.get(key).px);
    const y = (key) => t.y(this.byKey.get(key).py);
    lines.attr('x1', (e) => x(e.s)).attr('y1', (e) => y(e.s)).attr('x2', (e) => x(e.t)).attr('y2', (e) => y(e.t));
    circles.attr('cx', (n) => t.x(n.px)).attr('cy', (n) => t.y(n.py));
  },
});

// The tooltip of a place: its title and rows.
export function placeText(n) {
  return {
    title: n.name || String(n.id),
    rows: [['category', formatProperty(n.category)], ...SCORES.map((s) => [words(s), formatValue(n[s])])],
  };
}

export function networkLegend(target, result, layer) {
  const counts = d3.rollups(result.nodes, (v) => v.length, (n) => n.category).sort((a, b) => b[1] - a[1]);
  swatchLegend(target, {
    title: 'Co-visit network',
    note: countOf(result.nodes.length, 'place') + ', ' + countOf(result.edges.length, 'link') + '; size: ' +
      words(layer.score) + '. Click a place to see its links.',
    items: counts.slice(0, 8).map(([c]) => [layer.categories(c), c === null ? '(none)' : String(c)]),
    data: {kind: 'network'},
  });
}
