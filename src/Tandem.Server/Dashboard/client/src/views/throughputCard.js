// Throughput card: backend split over time plus the latest per-kernel rates.

import { TimeSeriesChart } from '../charts/timeSeriesChart.js';
import { byId, el, setText, syncRows } from '../dom.js';
import { BACKENDS, formatRate } from '../format.js';
import { backendTotals, throughputByBackend, throughputByKernel } from '../series.js';

export class ThroughputCard {
  constructor() {
    this.chart = new TimeSeriesChart(byId('throughput-chart'), {
      unit: 'calls/s', format: formatRate, emptyText: 'No completed calls yet',
    });
    this.split = byId('backend-split');
    this.table = byId('throughput-table');
  }

  render(snapshots, latest) {
    this.chart.update(throughputByBackend(snapshots));
    this.renderSplit(backendTotals(latest));
    this.renderTable(throughputByKernel(latest));
  }

  renderSplit(totals) {
    for (const backend of BACKENDS) {
      this.split.dataset[backend] = String(round(totals.get(backend) ?? 0));
    }
    const parts = [...totals.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([backend, rate]) => `${backend} ${formatRate(rate)}/s`);
    setText(this.split, parts.length ? parts.join(' · ') : 'no calls');
  }

  renderTable(byKernel) {
    const rows = [...byKernel.entries()].sort((a, b) => a[0].localeCompare(b[0]));
    syncRows(this.table, rows, ([kernel]) => kernel,
      () => el('tr', {}, el('td', { class: 'mono' }), ...BACKENDS.map(() => el('td', { class: 'num' })), el('td', { class: 'num strong' })),
      (row, [kernel, rates]) => {
        const cells = row.children;
        setText(cells[0], kernel);
        BACKENDS.forEach((backend, index) => {
          const rate = rates.get(backend);
          setText(cells[index + 1], rate == null ? '–' : formatRate(rate));
        });
        let total = 0;
        for (const rate of rates.values()) total += rate;
        setText(cells[BACKENDS.length + 1], formatRate(total));
      });
  }
}

function round(value) {
  return Math.round(value * 1000) / 1000;
}
