// Cards that follow the selected kernel (latency, queue vs compute, batch
// sizes) and the HTTP latency card beside them.

import { HistogramChart } from '../charts/histogramChart.js';
import { TimeSeriesChart } from '../charts/timeSeriesChart.js';
import { byId, el, setText } from '../dom.js';
import { formatCount, formatMs, formatRate } from '../format.js';
import { batchHistogram, httpLatency, kernelLatency, knownKernels, queueCompute } from '../series.js';

export class KernelDetail {
  /** @param {() => void} onKernelChange asks for a redraw with the new selection */
  constructor(onKernelChange) {
    // The kernels come from the server (every kernel the host knows); the first is shown until one is chosen.
    this.kernel = null;
    this.select = byId('kernel-select');
    this.select.addEventListener('change', () => {
      this.kernel = this.select.value;
      onKernelChange();
    });

    this.latency = new TimeSeriesChart(byId('latency-chart'), {
      unit: 'ms', format: formatMs, emptyText: 'No calls for this kernel yet',
    });
    this.queue = new TimeSeriesChart(byId('queue-chart'), {
      unit: 'ms', format: formatMs, emptyText: 'No batches for this kernel yet',
    });
    this.batches = new HistogramChart(byId('batch-chart'), { unit: 'batches', xLabel: 'rows per batch' });
    this.http = new TimeSeriesChart(byId('http-chart'), {
      unit: 'ms', format: formatMs, emptyText: 'No HTTP requests yet',
    });
    this.httpRate = byId('http-rate');
    this.batchTotal = byId('batch-total');
    this.kernelNames = document.querySelectorAll('.kernel-name');
  }

  render(snapshots, latest) {
    const kernels = knownKernels(latest, []);
    if (!kernels.includes(this.kernel)) this.kernel = kernels[0] ?? null;
    this.syncOptions(kernels);
    for (const name of this.kernelNames) setText(name, this.kernel ?? '');

    this.latency.update(kernelLatency(snapshots, this.kernel));
    this.queue.update(queueCompute(snapshots, this.kernel));
    const histogram = batchHistogram(latest, this.kernel);
    this.batches.update(histogram);
    const batchCount = histogram ? histogram.counts.reduce((sum, count) => sum + count, 0) : 0;
    setText(this.batchTotal, `${formatCount(batchCount)} batches, last 10 s`);
    this.http.update(httpLatency(snapshots));
    setText(this.httpRate, `${formatRate(latest.http?.perSecond)} req/s`);
  }

  syncOptions(kernels) {
    const current = [...this.select.options].map((option) => option.value);
    if (current.join('\u0000') === kernels.join('\u0000')) return;
    this.select.replaceChildren(...kernels.map((kernel) => el('option', { value: kernel, text: kernel })));
    this.select.value = this.kernel;
  }
}
