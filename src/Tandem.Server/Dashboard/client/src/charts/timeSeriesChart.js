// A uPlot line chart over the rolling window whose set of series may change
// between snapshots (backends appear, workers come and go).

import uPlot from 'uplot';
import { colourFor } from '../format.js';
import { WINDOW_SIZE } from '../store.js';
import { axis, followWidth, valueAxis, zeroBasedRange } from './theme.js';

const clockLabel = (seconds) => new Date(seconds * 1000).toLocaleTimeString('en-GB', { hour12: false });

export class TimeSeriesChart {
  /**
   * @param {HTMLElement} container element the chart fills (its width is tracked)
   * @param {{ unit: string, format: (v: number) => string, height?: number, emptyText?: string }} options
   */
  constructor(container, { unit, format, height = 180, emptyText = 'No data yet' }) {
    this.container = container;
    this.unit = unit;
    this.format = format;
    this.height = height;
    this.plot = null;
    this.seriesKey = null;
    this.span = WINDOW_SIZE;
    this.empty = container.appendChild(document.createElement('div'));
    this.empty.className = 'chart-empty';
    this.empty.textContent = emptyText;
  }

  update({ x, span, series }) {
    if (span > 0) this.span = span;
    const key = series.map((s) => s.label).join('\u0000');
    if (key !== this.seriesKey) this.rebuild(series, key);

    this.plot.setData([x, ...series.map((s) => s.values)]);
    if (this.plot.cursor.idx == null) showLatestInLegend(this.plot);

    const hasData = series.some((s) => s.values.some((v) => v != null));
    this.empty.hidden = hasData;
  }

  rebuild(series, key) {
    this.destroy();
    this.seriesKey = key;
    const format = this.format;
    const unit = this.unit;
    const options = {
      width: Math.max(this.container.clientWidth, 200),
      height: this.height,
      legend: { live: true },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      scales: {
        x: {
          time: true,
          range: (u, min, max) => {
            const end = Number.isFinite(max) ? max : Date.now() / 1000;
            return [end - this.span, end];
          },
        },
        y: { range: zeroBasedRange },
      },
      axes: [
        axis({ values: (u, splits) => splits.map(clockLabel), space: 70, size: 28 }),
        valueAxis(unit),
      ],
      series: [
        { label: 'time', value: (u, v) => (v == null ? '–' : clockLabel(v)) },
        ...series.map(({ label }, index) => ({
          label,
          stroke: colourFor(label, index),
          width: 1.5,
          points: { show: false },
          value: (u, v) => (v == null ? '–' : `${format(v)} ${unit}`),
        })),
      ],
      hooks: {
        setCursor: [(u) => { if (u.cursor.idx == null) showLatestInLegend(u); }],
      },
    };
    this.plot = new uPlot(options, [[], ...series.map(() => [])], this.container);
    this.resizer = followWidth(this.container, this.plot, this.height);
  }

  destroy() {
    this.resizer?.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }
}

/** uPlot shows "--" when the pointer is elsewhere; the newest point is more useful. */
function showLatestInLegend(plot) {
  const length = plot.data?.[0]?.length ?? 0;
  if (length > 0) plot.setLegend({ idx: length - 1 }, false);
}
