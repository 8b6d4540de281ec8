// The menu's analysis section: the analyses the server declares, controls
// built from their parameter declarations, and the results box.

import {byId, clear, el, fill, input, labelFor, option} from './dom.js';
import {fieldNames, isId} from './fields.js';
import {countOf, formatCount, formatValue, labelText} from './format.js';

const given = (v) => v !== null && v !== undefined;

// The input of one parameter declaration: {name, type, default, min, max, choices, help, numeric}.
function paramInput(param, layer) {
  if (param.type === 'bool') return input('checkbox', {checked: Boolean(param.default)});
  if (param.type === 'choice' || param.type === 'field') {
    const select = el('select');
    let values = param.choices || [];
    if (param.type === 'field') {
      values = fieldNames(layer, param.numeric !== false);
      if (!given(param.default)) select.append(option('', '(none)'));
    }
    select.append(...values.map((v) => option(v, v)));
    if (given(param.default) && values.includes(param.default)) {
      select.value = param.default;
    } else if (param.type === 'field' && given(param.default)) {
      // the declared default is not a field of this layer: the first field that is not an identifier
      const pick = layer.fields.find((f) => values.includes(f.name) && !isId(f));
      if (pick) select.value = pick.name;
    }
    return select;
  }
  const number = param.type === 'int' || param.type === 'float';
  const box = number
    ? input('number', {step: param.type === 'int' ? '1' : 'any', inputMode: param.type === 'int' ? 'numeric' : 'decimal'})
    : input('text');
  if (number && param.min !== undefined) box.min = param.min;
  if (number && param.max !== undefined) box.max = param.max;
  if (given(param.default)) box.value = param.default;
  else box.placeholder = 'auto';
  return box;
}

// The labelled control of one parameter, with its help.
function control(param, layer) {
  const box = paramInput(param, layer);
  box.id = 'param-' + param.name;
  box.name = param.name;
  box.dataset.type = param.type;
  const label = labelFor(box, labelText(param.name));
  const wrap = el('div', 'control param');
  if (param.type === 'bool') {
    wrap.classList.add('check-control');
    wrap.append(box, label);
  } else {
    wrap.append(label, box);
  }
  if (param.help) {
    const help = el('div', 'help', param.help);
    help.id = box.id + '-help';
    box.setAttribute('aria-describedby', help.id);
    wrap.append(help);
  }
  return wrap;
}

export class AnalysisPanel {
  // handlers: {run(), clear()}
  constructor(handlers) {
    this.select = byId('analysis');
    this.paramsBox = byId('analysis-params');
    this.help = byId('analysis-help');
    this.results = byId('results');
    this.runButton = byId('run-analysis');
    this.clearButton = byId('clear-analysis');
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
    this.help.textContent = a ? a.description || '' : '';
    this.paramsBox.replaceChildren(...(a ? a.params || [] : []).map((p) => control(p, this.layer)));
  }

  valid() {
    for (const box of this.paramsBox.querySelectorAll('input')) {
      if (!box.checkValidity()) {
        box.reportValidity();
        return false;
      }
    }
    return Boolean(this.current);
  }

  // Choose analysis `name` and set its controls to `params` ({name: text}); returns a note for each
  // value that could not be set.
  setValues(name, params) {
    const notes = [];
    if (!this.catalogue.some((a) => a.name === name)) return ['analysis ' + JSON.stringify(name)];
    this.select.value = name;
    this._build();
    for (const [key, value] of Object.entries(params)) {
      const box = this.paramsBox.querySelector('[name="' + CSS.escape(key) + '"]');
      if (!box) {
        notes.push('parameter ' + JSON.stringify(key));
      } else if (box.dataset.type === 'bool') {
        box.checked = value === 'true';
      } else {
        box.value = value;
        if (box.value !== value || (box.checkValidity && !box.checkValidity())) {
          notes.push(key + '=' + value + ' (not a valid value)');
          box.value = '';
          this._build();
        }
      }
    }
    return notes;
  }

  // The query parameters of the controls; empty ones are left to the server's defaults.
  values() {
    const out = {};
    for (const box of this.paramsBox.querySelectorAll('input, select')) {
      if (box.dataset.type === 'bool') out[box.name] = box.checked ? 'true' : 'false';
      else if (box.value !== '') out[box.name] = box.value;
    }
    return out;
  }

  setBusy(busy) {
    this.runButton.disabled = busy || !this.current;
    this.runButton.textContent = busy ? 'Running…' : 'Run';
  }

  setCleared() {
    clear(this.results);
    this.clearButton.disabled = true;
  }

  // What the result says, as text: input size, timing, model and metrics.
  showResult(result, drawn) {
    const parts = [];
    const a = this.catalogue.find((x) => x.name === result.analysis);
    const head = el('div', 'results-title', a ? a.title : result.analysis || 'Result');
    if (result.seconds !== undefined) {
      head.append(el('span', 'muted', ' · ' + (result.cached ? 'cached' : formatValue(result.seconds) + ' s')));
    }
    parts.push(head);
    const used = result.input;
    if (used) {
      const text = used.sampled
        ? 'sampled ' + formatCount(used.used) + ' of ' + countOf(used.count, 'point')
        : countOf(used.count, 'point') + ' in view';
      parts.push(el('div', 'results-input', text));
    }
    if (result.model) {
      const params = Object.entries(result.model.params || {}).map(([k, v]) => k + '=' + v).join(' ');
      parts.push(el('div', 'results-model', 'model: ' + result.model.name + (params ? ' (' + params + ')' : '')));
    }
    if (result.metrics) parts.push(metricsTable(result.metrics, result.baseline));
    for (const note of result.notes || []) parts.push(el('div', 'results-note', String(note)));
    if (!drawn) {
      const text = JSON.stringify(result, null, 1);
      parts.push(el('pre', 'results-json', text.length > 4000 ? text.slice(0, 4000) + '\n…' : text));
    }
    fill(this.results, ...parts);
    this.clearButton.disabled = false;
  }
}

function metricsTable(metrics, baseline) {
  const table = el('table', 'metrics');
  const row = (cell, cells) => {
    const tr = el('tr');
    tr.append(...cells.map((text, i) => el(i ? cell : 'th', '', text)));
    table.append(tr);
  };
  row('th', ['', 'model', ...(baseline ? ['baseline'] : [])]);
  for (const key of Object.keys(metrics)) {
    const values = [metrics[key], ...(baseline ? [baseline[key]] : [])].map(formatValue);
    row('td', [key === 'r2' ? 'R²' : key.toUpperCase(), ...values]);
  }
  return table;
}
