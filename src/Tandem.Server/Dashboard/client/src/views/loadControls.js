// Load generator panel: start/stop and its concurrency and rate.

import { adminRequest } from '../api.js';
import { byId } from '../dom.js';
import { isNumber } from '../format.js';

export class LoadControls {
  /** @param {import('./statusLine.js').StatusLine} status */
  constructor(status) {
    this.status = status;
    this.form = byId('load-form');
    this.concurrency = byId('load-concurrency');
    this.target = byId('load-target');
    this.toggle = byId('load-toggle');
    this.apply = byId('load-apply');
    this.running = false;
    // Inputs the user is editing are not overwritten by incoming snapshots.
    this.edited = false;

    for (const input of [this.concurrency, this.target]) {
      input.addEventListener('input', () => { this.edited = true; });
    }
    this.toggle.addEventListener('click', () => this.send(!this.running));
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.send(this.running);
    });
  }

  render(latest) {
    const load = latest.load;
    const available = load != null;
    this.toggle.disabled = !available || this.busy;
    this.apply.disabled = !available || this.busy;
    if (!available) return;

    this.running = Boolean(load.running);
    this.toggle.textContent = this.running ? 'Stop' : 'Start';
    this.toggle.classList.toggle('danger', this.running);
    if (!this.edited) {
      if (isNumber(load.concurrency)) this.concurrency.value = String(load.concurrency);
      if (isNumber(load.targetPerSecond)) this.target.value = String(load.targetPerSecond);
    }
  }

  async send(running) {
    if (!this.form.reportValidity()) return;
    const request = {
      running,
      concurrency: Number(this.concurrency.value),
      targetPerSecond: Number(this.target.value),
    };
    const description = running === this.running
      ? `Set load to ${request.concurrency} × ${request.targetPerSecond}/s`
      : `${running ? 'Start' : 'Stop'} load generator`;
    this.busy = true;
    const result = await this.status.run(description, [this.toggle, this.apply],
      () => adminRequest('PUT', 'admin/load', request));
    this.busy = false;
    if (result !== undefined) {
      this.edited = false;
      this.render({ load: result ?? request });
    }
  }
}
