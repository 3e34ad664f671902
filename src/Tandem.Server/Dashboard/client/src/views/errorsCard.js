// Errors card: failure rate per backend/status code and the fallback totals.

import { TimeSeriesChart } from '../charts/timeSeriesChart.js';
import { byId, el, setText, syncRows } from '../dom.js';
import { formatCount, formatRate } from '../format.js';
import { errorRates } from '../series.js';

export class ErrorsCard {
  constructor() {
    this.chart = new TimeSeriesChart(byId('errors-chart'), {
      unit: 'failures/s', format: formatRate, emptyText: 'No errors in the last 120 s',
    });
    this.fallbacks = byId('fallbacks-table');
    this.fallbacksEmpty = byId('fallbacks-empty');
  }

  render(snapshots, latest) {
    this.chart.update(errorRates(snapshots));

    const rows = [...latest.fallbacks].sort((a, b) => (b.total ?? 0) - (a.total ?? 0));
    this.fallbacksEmpty.hidden = rows.length > 0;
    syncRows(this.fallbacks, rows,
      (row) => `${row.kernel}|${row.from}|${row.to}|${row.reason}`,
      () => el('tr', {}, el('td', { class: 'mono' }), el('td'), el('td', { class: 'mono' }),
        el('td', { class: 'num' }), el('td', { class: 'num strong' })),
      (tr, row) => {
        const [kernel, route, reason, rate, total] = tr.children;
        setText(kernel, row.kernel ?? '–');
        setText(route, `${row.from ?? '?'} → ${row.to ?? '?'}`);
        setText(reason, row.reason ?? '–');
        setText(rate, formatRate(row.perSecond));
        setText(total, formatCount(row.total));
      });
  }
}
