// The filter panel's small charts, drawn with D3 (the global d3 of static/vendor/d3).
//
// BarChart: a histogram of a number (bins), the hours of the day, the days of the
// week or a date timeline, with a brush (d3.brushX) that selects a range snapped
// to the chart's own bars. CategoryList: bars with counts and checkboxes, with a
// search box when there are many values. Both redraw their counts in place, so a
// brush or a ticked box stays as it is while the other charts change under it.
// Every text is set as text.

import {el, input} from './dom.js';
import {formatCount} from './format.js';

const WIDTH = 272;
const HEIGHT = 64;
const MARGIN = {top: 4, right: 6, bottom: 16, left: 6};
const DAY_NAMES = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const SEARCH_FROM = 12; // values: more than this many get a search box

// The chart's bars as [{k, from, to, count}] and the x domain, whatever its part.
function bars(chart) {
  if (chart.bins) {
    return chart.counts.map((count, k) => ({k, from: chart.bins[k], to: chart.bins[k + 1], count}));
  }
  return chart.counts.map((count, k) => ({k, from: k, to: k + 1, count}));
}

function domain(chart) {
  if (chart.bins) return [chart.bins[0], chart.bins[chart.bins.length - 1]];
  return [0, chart.counts.length];
}

// A bar's label, for its title and the axis.
export function barLabel(chart, k) {
  if (chart.part === 'hours') return String(k).padStart(2, '0') + ':00';
  if (chart.part === 'days') return DAY_NAMES[k];
  if (chart.part === 'dates') return chart.dates[k];
  const a = chart.bins[k];
  const b = chart.bins[k + 1];
  return d3.format('~s')(a) + '–' + d3.format('~s')(b);
}

export class BarChart {
  // onBrush([from, to] | null, final): a selection in bar indices, to exclusive.
  constructor(parent, {onBrush}) {
    this.onBrush = onBrush;
    this.chart = null;
    this.silent = false;
    this.selection = null; // [from, to) bar indices
    this.svg = d3.select(parent).append('svg')
      .attr('class', 'chart')
      .attr('viewBox', `0 0 ${WIDTH} ${HEIGHT}`)
      .attr('width', WIDTH)
      .attr('height', HEIGHT);
    this.plot = this.svg.append('g').attr('transform', `translate(${MARGIN.left},${MARGIN.top})`);
    this.barsG = this.plot.append('g').attr('class', 'bars');
    this.axisG = this.plot.append('g').attr('class', 'axis')
      .attr('transform', `translate(0,${HEIGHT - MARGIN.top - MARGIN.bottom})`);
    this.brushG = this.plot.append('g').attr('class', 'brush');
    this.x = d3.scaleLinear().range([0, WIDTH - MARGIN.left - MARGIN.right]);
    this.y = d3.scaleLinear().range([HEIGHT - MARGIN.top - MARGIN.bottom, 0]);
    this.brush = d3.brushX()
      .extent([[0, 0], [WIDTH - MARGIN.left - MARGIN.right, HEIGHT - MARGIN.top - MARGIN.bottom]])
      .on('brush', (event) => this._brushed(event, false))
      .on('end', (event) => this._brushed(event, true));
    this.brushG.call(this.brush);
  }

  get node() {
    return this.svg.node();
  }

  update(chart) {
    const first = !this.chart;
    this.chart = chart;
    const data = bars(chart);
    this.x.domain(domain(chart));
    this.y.domain([0, d3.max(data, (d) => d.count) || 1]);
    const x = this.x;
    this.barsG.selectAll('rect')
      .data(data, (d) => d.k)
      .join((enter) => enter.append('rect').call((r) => r.append('title')))
      .attr('x', (d) => x(d.from) + 0.5)
      .attr('width', (d) => Math.max(0.5, x(d.to) - x(d.from) - 1))
      .attr('y', (d) => this.y(d.count))
      .attr('height', (d) => this.y(0) - this.y(d.count))
      .attr('data-count', (d) => d.count)
      .classed('out', (d) => this.selection !== null && (d.k < this.selection[0] || d.k >= this.selection[1]))
      .select('title').text((d) => barLabel(chart, d.k) + ': ' + formatCount(d.count));
    this.svg.attr('data-counts', chart.counts.join(','));
    if (first) this._axis(chart);
  }

  _axis(chart) {
    const n = chart.counts.length;
    let ticks;
    if (chart.part === 'hours') ticks = [0, 6, 12, 18].map((k) => [k + 0.5, String(k)]);
    else if (chart.part === 'days') ticks = DAY_NAMES.map((d, k) => [k + 0.5, d[0]]);
    else if (chart.part === 'dates') ticks = n ? [[0.5, chart.dates[0]], [n - 0.5, chart.dates[n - 1]]] : [];
    else ticks = this.x.ticks(4).map((v) => [v, d3.format('~s')(v)]);
    this.axisG.selectAll('text')
      .data(ticks)
      .join('text')
      .attr('x', (d) => this.x(d[0]))
      .attr('y', 12)
      .attr('text-anchor', (d, i) => (chart.part === 'dates' ? (i ? 'end' : 'start') : 'middle'))
      .text((d) => d[1]);
  }

  // The brush's pixels as bar indices [from, to), snapped outwards to whole bars.
  _snap(pixels) {
    const data = bars(this.chart);
    const lo = this.x.invert(pixels[0]);
    const hi = this.x.invert(pixels[1]);
    let from = data.findIndex((d) => d.to > lo);
    let to = data.length - [...data].reverse().findIndex((d) => d.from < hi);
    if (from < 0) from = data.length - 1;
    if (to > data.length) to = data.length;
    if (to <= from) to = from + 1;
    return [from, to];
  }

  _brushed(event, final) {
    if (this.silent || !this.chart) return;
    if (!event.selection) {
      this.selection = null;
      this.onBrush(null, final);
      this._shade();
      return;
    }
    const snapped = this._snap(event.selection);
    this.selection = snapped;
    if (final && event.sourceEvent) this.show(snapped); // settle on the bars' edges
    this._shade();
    this.onBrush(snapped, final);
  }

  _shade() {
    const s = this.selection;
    this.barsG.selectAll('rect').classed('out', (d) => s !== null && (d.k < s[0] || d.k >= s[1]));
  }

  // Put the brush on bars [from, to) without telling anyone (playback, a cleared filter).
  show(selection) {
    this.silent = true;
    try {
      this.selection = selection;
      const data = bars(this.chart);
      if (selection) this.brushG.call(this.brush.move, [this.x(data[selection[0]].from), this.x(data[selection[1] - 1].to)]);
      else this.brushG.call(this.brush.move, null);
      this._shade();
    } finally {
      this.silent = false;
    }
  }

  // Move the brush to bars [from, to) as a user would: the brush's events fire.
  brushTo(selection) {
    const data = bars(this.chart);
    if (!selection) return this.brushG.call(this.brush.move, null);
    return this.brushG.call(this.brush.move, [this.x(data[selection[0]].from) + 0.01, this.x(data[selection[1] - 1].to) - 0.01]);
  }
}

export class CategoryList {
  // onToggle(selected: Set) after a box is ticked or unticked.
  constructor(parent, {onToggle}) {
    this.onToggle = onToggle;
    this.selected = new Set();
    this.chart = null;
    this.root = el('div', 'categories');
    this.search = input('search', {className: 'category-search', placeholder: 'search values'});
    this.search.hidden = true;
    this.search.setAttribute('aria-label', 'search values');
    this.search.addEventListener('input', () => this._draw());
    this.list = el('ul', 'category-list');
    this.more = el('p', 'help');
    this.root.append(this.search, this.list, this.more);
    parent.append(this.root);
  }

  get node() {
    return this.root;
  }

  update(chart) {
    this.chart = chart;
    this.search.hidden = chart.values.length + (chart.other ? 1 : 0) <= SEARCH_FROM && !this.search.value;
    this._draw();
  }

  clear() {
    this.selected.clear();
    this._draw();
  }

  _draw() {
    const chart = this.chart;
    if (!chart) return;
    const counts = new Map(chart.values.map((v, i) => [String(v), chart.counts[i]]));
    const raw = new Map(chart.values.map((v) => [String(v), v]));
    for (const v of this.selected) if (!counts.has(String(v))) { counts.set(String(v), 0); raw.set(String(v), v); }
    const max = Math.max(1, ...counts.values());
    const needle = this.search.value.trim().toLowerCase();
    const rows = [];
    for (const [key, count] of counts) {
      if (needle && !key.toLowerCase().includes(needle)) continue;
      const value = raw.get(key);
      const box = input('checkbox', {checked: this.selected.has(value)});
      box.addEventListener('change', () => {
        if (box.checked) this.selected.add(value);
        else this.selected.delete(value);
        this.onToggle(this.selected);
      });
      const bar = el('span', 'category-bar');
      bar.style.width = (100 * count / max).toFixed(1) + '%';
      const label = el('label', 'category');
      label.append(box, el('span', 'category-name', key), el('span', 'category-count', formatCount(count)), bar);
      const row = el('li');
      row.dataset.value = key;
      row.dataset.count = String(count);
      row.append(label);
      rows.push(row);
    }
    this.list.replaceChildren(...rows);
    const notes = [];
    if (chart.other) notes.push(formatCount(chart.other) + ' with other values');
    if (chart.missing) notes.push(formatCount(chart.missing) + ' without a value');
    this.more.textContent = notes.join(', ');
  }
}
