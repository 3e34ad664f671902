// Number formatting and the fixed colour assignments shared by every card.

export const BACKENDS = ['managed', 'native', 'remote'];

export function isNumber(value) {
  return typeof value === 'number' && Number.isFinite(value);
}

export function formatRate(value) {
  return isNumber(value) ? value.toFixed(1) : '–';
}

export function formatMs(value) {
  if (!isNumber(value)) return '–';
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function formatCount(value) {
  return isNumber(value) ? Math.round(value).toLocaleString('en-US') : '–';
}

/** Compact axis labels: 1500 → "1.5k". */
export function formatAxis(value) {
  if (!isNumber(value)) return '';
  const magnitude = Math.abs(value);
  if (magnitude >= 1e6) return `${trim(value / 1e6)}M`;
  if (magnitude >= 1e3) return `${trim(value / 1e3)}k`;
  return trim(value);
}

function trim(value) {
  return String(Number(value.toFixed(2)));
}

export function formatClock(isoTime) {
  const date = new Date(isoTime);
  if (Number.isNaN(date.getTime())) return String(isoTime ?? '–');
  return date.toLocaleTimeString('en-GB', { hour12: false });
}

const FIXED_COLOURS = {
  managed: '#5b9cf5',
  native: '#3fc98a',
  remote: '#f0a640',
  p50: '#5b9cf5',
  p95: '#f0a640',
  p99: '#ef5f6b',
  'queue p50': '#b18cf2',
  'queue p95': '#7d5bc4',
  'compute p50': '#3fc98a',
  'compute p95': '#23855a',
};

const PALETTE = ['#5b9cf5', '#3fc98a', '#f0a640', '#ef5f6b', '#b18cf2', '#4fd1d9', '#e57ac8', '#c4c46a'];

/**
 * Backends and percentiles keep one colour everywhere; other labels (workers,
 * error codes) take palette colours by their position in the sorted series.
 */
export function colourFor(label, index) {
  return FIXED_COLOURS[label] ?? PALETTE[index % PALETTE.length];
}
