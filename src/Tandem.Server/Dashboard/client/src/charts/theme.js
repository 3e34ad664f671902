// uPlot settings shared by every chart, matched to the dark palette in styles.css.

import { formatAxis } from '../format.js';

const AXIS_TEXT = '#9aa5b8';
const GRID = 'rgba(255, 255, 255, 0.07)';
export const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

export function axis(overrides = {}) {
  return {
    stroke: AXIS_TEXT,
    font: FONT,
    labelFont: FONT,
    grid: { stroke: GRID, width: 1 },
    ticks: { stroke: GRID, width: 1, size: 4 },
    ...overrides,
  };
}

export function valueAxis(unit) {
  return axis({
    label: unit,
    labelSize: 16,
    size: 44,
    values: (u, splits) => splits.map(formatAxis),
  });
}

/** Zero-based y range with headroom; never collapses to [0, 0]. */
export function zeroBasedRange(u, min, max) {
  const top = Number.isFinite(max) && max > 0 ? max * 1.15 : 1;
  return [0, top];
}

/** Tracks the container width so cards can reflow without redrawing by hand. */
export function followWidth(container, chart, height) {
  const observer = new ResizeObserver(() => {
    const width = Math.floor(container.clientWidth);
    if (width > 0 && width !== chart.width) chart.setSize({ width, height });
  });
  observer.observe(container);
  return observer;
}
