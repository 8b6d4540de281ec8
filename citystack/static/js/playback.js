// Time playback: a layer with a time field stepped through the hours of the day
// (or its dates), one step at a chosen speed. Each step sets the filter and waits
// for the map to be drawn before the next one starts, so a slow view slows the
// play rather than skipping steps; the current step is shown as text.

import {el, option} from './dom.js';

const SPEEDS = [['0.5', '0.5 s a step'], ['1', '1 s a step'], ['2', '2 s a step']];

export class Playback {
  // step(mode, index) -> Promise (drawn); stop(mode) when the user stops.
  constructor(parent, {step, stop}) {
    this.onStep = step;
    this.onStop = stop;
    this.playing = false;
    this.index = -1;
    this.timer = null;
    this.run = 0;
    this.button = el('button', 'button play', 'Play');
    this.button.type = 'button';
    this.button.id = 'play';
    this.button.addEventListener('click', () => (this.playing ? this.pause() : this.play()));
    this.stopButton = el('button', 'button', 'Stop');
    this.stopButton.type = 'button';
    this.stopButton.id = 'play-stop';
    this.stopButton.addEventListener('click', () => this.stop(true));
    this.mode = el('select');
    this.mode.id = 'play-mode';
    this.mode.setAttribute('aria-label', 'what to step through');
    this.mode.append(option('hours', 'hour by hour'), option('dates', 'date by date'));
    this.mode.addEventListener('change', () => this.stop(true));
    this.speed = el('select');
    this.speed.id = 'play-speed';
    this.speed.setAttribute('aria-label', 'playback speed');
    this.speed.append(...SPEEDS.map(([v, t]) => option(v, t)));
    this.speed.value = '1';
    this.label = el('output', 'play-step', '');
    this.label.id = 'play-step';
    this.root = el('div', 'playback-controls');
    this.root.append(this.button, this.stopButton, this.mode, this.speed, this.label);
    this.root.hidden = true;
    parent.append(this.root);
    this.layer = null;
  }

  setLayer(info) {
    this.stop(false);
    this.layer = info;
    this.root.hidden = !(info.time && info.time.field);
  }

  get steps() {
    if (this.mode.value === 'hours') return 24;
    return (this.layer && this.layer.time && this.layer.time.dates.length) || 0;
  }

  text(index) {
    if (this.mode.value === 'hours') {
      const h = String(index).padStart(2, '0');
      return h + ':00–' + h + ':59';
    }
    return this.layer.time.dates[index][0];
  }

  play() {
    if (!this.steps) return;
    this.playing = true;
    this.button.textContent = 'Pause';
    this.root.dataset.playing = '1';
    this._next(++this.run);
  }

  pause() {
    this.playing = false;
    this.run++;
    clearTimeout(this.timer);
    this.button.textContent = 'Play';
    this.root.dataset.playing = '0';
  }

  // user: the user stopped it (the step's filter is taken off); else a new layer or chart.
  stop(user = false) {
    const was = this.index >= 0;
    this.pause();
    this.index = -1;
    this.label.textContent = '';
    delete this.root.dataset.step;
    if (user && was) this.onStop(this.mode.value);
  }

  // The hour filter was set by hand: the playback starts again from the beginning.
  reset() {
    if (!this.playing) {
      this.index = -1;
      this.label.textContent = '';
      delete this.root.dataset.step;
    }
  }

  drawn() {}

  async _next(run) {
    if (run !== this.run) return;
    this.index = (this.index + 1) % this.steps;
    const index = this.index;
    this.label.textContent = this.text(index);
    this.root.dataset.step = String(index);
    const started = performance.now();
    try {
      await this.onStep(this.mode.value, index);
    } catch (err) {
      // the map says what went wrong; the play goes on
    }
    if (run !== this.run) return;
    this.root.dataset.shown = String(index);
    const wait = Math.max(0, Number(this.speed.value) * 1000 - (performance.now() - started));
    this.timer = setTimeout(() => this._next(run), wait);
  }
}
