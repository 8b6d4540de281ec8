// The status line: the latest progress message of the work that runs, "idle" when none does.

export class Status {
  constructor(node) {
    this.node = node;
    this.jobs = [];
    this.show('idle', 'idle');
  }

  show(text, state) {
    this.node.textContent = text;
    this.node.dataset.state = state;
    this.node.title = text;
    document.body.dataset.busy = this.jobs.length ? '1' : '0';
  }

  // A job reports progress until it ends with done() or fail(err).
  start(message) {
    const job = {message};
    this.jobs.push(job);
    this.show(message, 'busy');
    return {
      progress: (text) => {
        job.message = text;
        if (this.jobs[this.jobs.length - 1] === job) this.show(text, 'busy');
      },
      done: () => this.end(job, null),
      fail: (err) => this.end(job, err),
    };
  }

  end(job, err) {
    const i = this.jobs.indexOf(job);
    if (i < 0) return;
    this.jobs.splice(i, 1);
    const last = this.jobs[this.jobs.length - 1];
    if (err) this.show('error: ' + err.message, 'error');
    else if (last) this.show(last.message, 'busy');
    else this.show('idle', 'idle');
  }
}
