// A uPlot bar chart for one histogram (categorical x, one bar per bucket).

import uPlot from 'uplot';
import { axis, followWidth, valueAxis, zeroBasedRange } from './theme.js';

const BAR_COLOUR = '#5b9cf5';

export class HistogramChart {
  constructor(container, { unit, xLabel, height = 180, emptyText = 'No batches yet' }) {
    this.container = container;
    this.unit = unit;
    this.xLabel = xLabel;
    this.height = height;
    this.labels = [];
    this.plot = null;
    this.empty = container.appendChild(document.createElement('div'));
    this.empty.className = 'chart-empty';
    this.empty.textContent = emptyText;
  }

  /** @param {{ labels: string[], counts: number[] } | null} histogram */
  update(histogram) {
    const labels = histogram?.labels ?? [];
    const counts = histogram?.counts ?? [];
    if (!this.plot || labels.join('\u0000') !== this.labels.join('\u0000')) this.rebuild(labels);
    this.plot.setData([labels.map((_, index) => index), counts]);
    this.empty.hidden = counts.some((count) => count > 0);
  }

  rebuild(labels) {
    this.resizer?.disconnect();
    this.plot?.destroy();
    this.labels = labels;
    const unit = this.unit;
    const options = {
      width: Math.max(this.container.clientWidth, 200),
      height: this.height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: {
        x: { time: false, range: () => [-0.5, Math.max(labels.length, 1) - 0.5] },
        y: { range: zeroBasedRange },
      },
      axes: [
        axis({
          label: this.xLabel,
          labelSize: 16,
          size: 40,
          splits: () => labels.map((_, index) => index),
          values: (u, splits) => splits.map((index) => labels[index] ?? ''),
        }),
        valueAxis(unit),
      ],
      series: [
        {},
        {
          label: unit,
          stroke: BAR_COLOUR,
          fill: 'rgba(91, 156, 245, 0.45)',
          width: 1,
          paths: uPlot.paths.bars({ size: [0.7, 48] }),
          points: { show: false },
        },
      ],
    };
    this.plot = new uPlot(options, [[], []], this.container);
    this.resizer = followWidth(this.container, this.plot, this.height);
  }
}
