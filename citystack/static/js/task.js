// Work of one kind, the latest only: starting it again aborts the run before.
// Each run is a job on the status line; an aborted run ends quietly, a failed one says why.

import {isAbort} from './http.js';

export class Task {
  constructor(status) {
    this.status = status;
    this.controller = null;
  }

  get running() {
    return this.controller !== null;
  }

  abort() {
    if (this.controller) this.controller.abort();
  }

  // work({signal, progress(text)}) runs under a status job that starts with `message`.
  async run(message, work) {
    this.abort();
    const controller = (this.controller = new AbortController());
    const job = this.status.start(message);
    try {
      await work({signal: controller.signal, progress: job.progress});
      job.done();
    } catch (err) {
      if (isAbort(err)) job.done();
      else job.fail(err);
    } finally {
      if (this.controller === controller) this.controller = null;
    }
  }
}
