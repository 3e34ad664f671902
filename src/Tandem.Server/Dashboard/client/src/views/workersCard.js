// Remote worker pool: table with per-worker restart, in-flight chart, rolling upgrade.

import { adminRequest } from '../api.js';
import { TimeSeriesChart } from '../charts/timeSeriesChart.js';
import { byId, el, setText, syncRows } from '../dom.js';
import { formatCount } from '../format.js';
import { workersInFlight } from '../series.js';

const STATUSES = new Set(['starting', 'serving', 'notServing', 'ejected', 'retiring']);

export class WorkersCard {
  /** @param {import('./statusLine.js').StatusLine} status */
  constructor(status) {
    this.status = status;
    this.rows = byId('workers-rows');
    this.empty = byId('workers-empty');
    this.grid = byId('workers-grid');
    this.chart = new TimeSeriesChart(byId('inflight-chart'), {
      unit: 'calls', format: formatCount, height: 160, emptyText: 'No Remote workers',
    });
    this.upgrade = byId('rolling-upgrade');
    this.upgrade.addEventListener('click', () =>
      this.status.run('Rolling upgrade', this.upgrade,
        () => adminRequest('POST', 'admin/workers/upgrade', {})));
  }

  render(snapshots, latest) {
    const workers = [...latest.workers].sort((a, b) =>
      String(a.name).localeCompare(String(b.name), 'en', { numeric: true }));
    this.empty.hidden = workers.length > 0;
    this.grid.hidden = workers.length === 0;
    syncRows(this.rows, workers, (worker) => String(worker.name), (worker) => this.createRow(worker), updateRow);
    this.chart.update(workersInFlight(snapshots));
  }

  createRow(worker) {
    const name = String(worker.name);
    const restart = el('button', {
      type: 'button',
      class: 'small',
      'data-testid': `restart-${name}`,
      text: 'Restart',
    });
    restart.addEventListener('click', () =>
      this.status.run(`Restart ${name}`, restart,
        () => adminRequest('POST', `admin/workers/${encodeURIComponent(name)}/restart`)));
    return el('tr', {},
      el('td', { class: 'mono', title: worker.address ?? '' }),
      el('td', {}, el('span', { class: 'pill' })),
      el('td', { class: 'num' }), el('td', { class: 'num' }), el('td', { class: 'num' }),
      el('td', { class: 'mono' }), el('td', { class: 'num mono' }),
      el('td', { class: 'actions' }, restart));
  }
}

function updateRow(row, worker) {
  const [name, status, inFlight, completed, failed, version, pid] = row.children;
  setText(name, String(worker.name));
  name.title = worker.address ?? '';
  const pill = status.firstChild;
  const state = String(worker.status ?? 'unknown');
  setText(pill, state);
  pill.dataset.status = STATUSES.has(state) ? state : 'unknown';
  setText(inFlight, formatCount(worker.inFlight));
  setText(completed, formatCount(worker.completed));
  setText(failed, formatCount(worker.failed));
  failed.classList.toggle('bad', (worker.failed ?? 0) > 0);
  setText(version, worker.version ?? '–');
  setText(pid, worker.processId != null ? String(worker.processId) : '–');
}
