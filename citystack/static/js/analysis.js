// The menu's analysis section: the analyses the server declares, controls
// built from their parameter declarations, and the results box.

import {formatCount, formatValue} from './legend.js';

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function option(value, text) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  return o;
}

function labelText(name) {
  return name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

// One control for one parameter declaration: {name, type, default, min, max, choices, help, numeric}.
function control(param, layer) {
  const id = 'param-' + param.name;
  const wrap = el('div', 'control param');
  let input;
  if (param.type === 'bool') {
    wrap.classList.add('check-control');
    input = el('input');
    input.type = 'checkbox';
    input.checked = Boolean(param.default);
  } else if (param.type === 'choice' || param.type === 'field') {
    input = el('select');
    let values = param.choices || [];
    if (param.type === 'field') {
      values = layer.fields.filter((f) => f.type === 'number' || param.numeric === false).map((f) => f.name);
      if (param.default === null || param.default === undefined) input.append(option('', '(none)'));
    }
    for (const v of values) input.append(option(v, v));
    if (param.default !== null && param.default !== undefined && values.includes(param.default)) {
      input.value = param.default;
    }
  } else {
    input = el('input');
    if (param.type === 'int' || param.type === 'float') {
      input.type = 'number';
      input.step = param.type === 'int' ? '1' : 'any';
      if (param.min !== undefined) input.min = param.min;
      if (param.max !== undefined) input.max = param.max;
      input.inputMode = param.type === 'int' ? 'numeric' : 'decimal';
    } else {
      input.type = 'text';
    }
    if (param.default !== null && param.default !== undefined) input.value = param.default;
    else input.placeholder = 'auto';
  }
  input.id = id;
  input.name = param.name;
  input.dataset.type = param.type;
  const label = el('label', '', labelText(param.name));
  label.htmlFor = id;
  if (param.type === 'bool') wrap.append(input, label);
  else wrap.append(label, input);
  if (param.help) {
    const help = el('div', 'help', param.help);
    help.id = id + '-help';
    input.setAttribute('aria-describedby', help.id);
    wrap.append(help);
  }
  return wrap;
}

export class AnalysisPanel {
  // handlers: {run(), clear()}
  constructor(handlers) {
    this.select = $('analysis');
    this.paramsBox = $('analysis-params');
    this.help = $('analysis-help');
    this.results = $('results');
    this.runButton = $('run-analysis');
    this.clearButton = $('clear-analysis');
    this.catalogue = [];
    this.layer = null;
    this.select.addEventListener('change', () => this._build());
    this.runButton.addEventListener('click', () => {
      if (this.valid()) handlers.run();
    });
    this.clearButton.addEventListener('click', () => handlers.clear());
  }

  setCatalogue(analyses) {
    this.catalogue = analyses;
    if (this.layer) this.setLayer(this.layer);
  }

  // Offer the analyses that work on this layer's kind.
  setLayer(layer) {
    this.layer = layer;
    const wanted = this.select.value;
    const usable = this.catalogue.filter((a) => !a.kinds || a.kinds.includes(layer.kind));
    if (usable.length) {
      this.select.replaceChildren(...usable.map((a) => option(a.name, a.title || a.name)));
      if (usable.some((a) => a.name === wanted)) this.select.value = wanted;
    } else {
      this.select.replaceChildren(option('', 'no analyses for ' + layer.kind + ' layers'));
    }
    this.select.disabled = !usable.length;
    this.runButton.disabled = !usable.length;
    this._build();
  }

  get current() {
    return this.catalogue.find((a) => a.name === this.select.value) || null;
  }

  _build() {
    const a = this.current;
    this.paramsBox.replaceChildren();
    this.help.textContent = a ? a.description || '' : '';
    if (!a) return;
    for (const p of a.params || []) this.paramsBox.append(control(p, this.layer));
  }

  valid() {
    for (const input of this.paramsBox.querySelectorAll('input')) {
      if (!input.checkValidity()) {
        input.reportValidity();
        return false;
      }
    }
    return Boolean(this.current);
  }

  // The query parameters of the controls; empty ones are left to the server's defaults.
  values() {
    const out = {};
    for (const input of this.paramsBox.querySelectorAll('input, select')) {
      if (input.dataset.type === 'bool') out[input.name] = input.checked ? 'true' : 'false';
      else if (input.value !== '') out[input.name] = input.value;
    }
    return out;
  }

  setBusy(busy) {
    this.runButton.disabled = busy || !this.current;
    this.runButton.textContent = busy ? 'Running…' : 'Run';
  }

  setCleared() {
    this.results.replaceChildren();
    this.results.hidden = true;
    this.clearButton.disabled = true;
  }

  // What the result says, as text: input size, timing, model and metrics.
  showResult(result, drawn) {
    const box = this.results;
    box.replaceChildren();
    const a = this.catalogue.find((x) => x.name === result.analysis);
    const head = el('div', 'results-title', a ? a.title : result.analysis || 'Result');
    if (result.seconds !== undefined) {
      head.append(el('span', 'muted', ' · ' + (result.cached ? 'cached' : formatValue(result.seconds) + ' s')));
    }
    box.append(head);
    const input = result.input;
    if (input) {
      const text = input.sampled
        ? 'sampled ' + formatCount(input.used) + ' of ' + formatCount(input.count) + ' points'
        : formatCount(input.count) + ' points in view';
      box.append(el('div', 'results-input', text));
    }
    if (result.model) {
      const params = Object.entries(result.model.params || {}).map(([k, v]) => k + '=' + v).join(' ');
      box.append(el('div', 'results-model', 'model: ' + result.model.name + (params ? ' (' + params + ')' : '')));
    }
    if (result.metrics) box.append(metricsTable(result.metrics, result.baseline));
    for (const note of result.notes || []) box.append(el('div', 'results-note', String(note)));
    if (!drawn) {
      const pre = el('pre', 'results-json');
      const text = JSON.stringify(result, null, 1);
      pre.textContent = text.length > 4000 ? text.slice(0, 4000) + '\n…' : text;
      box.append(pre);
    }
    box.hidden = false;
    this.clearButton.disabled = false;
  }
}

function metricsTable(metrics, baseline) {
  const table = el('table', 'metrics');
  const head = el('tr');
  for (const text of ['', 'model', baseline ? 'baseline' : null]) if (text !== null) head.append(el('th', '', text));
  table.append(head);
  for (const key of Object.keys(metrics)) {
    const row = el('tr');
    row.append(el('th', '', key === 'r2' ? 'R²' : key.toUpperCase()));
    row.append(el('td', '', formatValue(metrics[key])));
    if (baseline) row.append(el('td', '', formatValue(baseline[key])));
    table.append(row);
  }
  return table;
}
