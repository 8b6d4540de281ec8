// Work of one kind, the latest only: starting it again aborts the run before.
// Each run is a job on the status line; an aborted run ends quietly, a failed one says why.

import {isAbort} from './http.js';

export class Task {
  constructor(status) {
    this.status = status;
    this.controller = null;
    this.error = null;
  }

  get running() {
    return this.controller !== null;
  }

  abort() {
    if (this.controller) this.controller.abort();
  }

  // work({signal, progress(text)}) runs under a status job that starts with `message`.
  // Resolves with true when the work is done, false when it failed (the error: this.error) or was aborted.
  async run(message, work) {
    this.abort();
    const controller = (this.controller = new AbortController());
    const job = this.status.start(message);
    this.error = null;
    try {
      await work({signal: controller.signal, progress: job.progress});
      job.done();
      return true;
    } catch (err) {
      if (isAbort(err)) {
        job.done();
      } else {
        this.error = err;
        job.fail(err);
      }
      return false;
    } finally {
      if (this.controller === controller) this.controller = null;
    }
  }
}
