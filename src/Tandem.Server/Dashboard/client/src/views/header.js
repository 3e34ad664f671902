// Top strip: server mode, native library, load generator, connection and freshness.

import { byId, setText } from '../dom.js';
import { formatClock, formatCount } from '../format.js';

export class HeaderView {
  constructor() {
    this.mode = byId('mode');
    this.native = byId('native-info');
    this.load = byId('load-info');
    this.lastUpdate = byId('last-update');
    this.count = byId('snapshot-count');
    this.live = byId('live-indicator');
  }

  setConnection(state) {
    if (this.live.dataset.state === state) return;
    this.live.dataset.state = state;
    this.live.textContent = state === 'live' ? 'live' : 'reconnecting';
  }

  render(snapshot, received) {
    setText(this.mode, snapshot.mode ?? '–');
    this.mode.dataset.backend = snapshot.mode ?? '';

    const native = snapshot.native;
    this.native.classList.toggle('bad', Boolean(native?.error));
    setText(this.native, describeNative(native));
    this.native.title = native?.path ?? '';

    const load = snapshot.load;
    setText(this.load, load
      ? `${load.running ? 'running' : 'stopped'} · ${formatCount(load.concurrency)} × ${formatCount(load.targetPerSecond)}/s`
      : 'not available');

    setText(this.lastUpdate, snapshot.time ?? '–');
    this.lastUpdate.title = formatClock(snapshot.time);
    setText(this.count, String(received));
  }
}

export function describeNative(native) {
  if (!native) return 'not loaded';
  const generation = native.generation != null ? `gen ${native.generation}` : 'gen –';
  const abi = native.abi ? ` · ABI ${native.abi}` : '';
  if (native.error) return `${generation} · error: ${native.error}`;
  const file = native.path ? ` · ${String(native.path).split(/[\\/]/).pop()}` : '';
  return `${generation}${abi}${file}`;
}
