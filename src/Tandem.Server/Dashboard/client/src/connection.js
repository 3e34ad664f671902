// Feeds the store: one fetch for the first paint, then the SSE stream.

const SNAPSHOT_URL = 'dashboard/snapshot';
const EVENTS_URL = 'dashboard/events';
// The server sends a snapshot every ~1 s; this much silence means the stream is stuck.
const SILENCE_LIMIT_MS = 10_000;
const RETRY_DELAY_MS = 2_000;

/**
 * @param {{ onSnapshot: (raw: object) => void, onState: (state: 'live' | 'reconnecting') => void }} handlers
 */
export function connect({ onSnapshot, onState }) {
  let source = null;
  let lastMessageAt = Date.now();
  let gotStreamSnapshot = false;

  loadFirstSnapshot();
  open();
  setInterval(checkSilence, 2_000);

  async function loadFirstSnapshot() {
    try {
      const response = await fetch(SNAPSHOT_URL, { cache: 'no-store' });
      if (!response.ok) return;
      const snapshot = await response.json();
      // A stream snapshot that beat the fetch is newer; don't paint over it.
      if (!gotStreamSnapshot) onSnapshot(snapshot);
    } catch {
      // The stream will deliver the next one; the indicator already says so.
    }
  }

  function open() {
    onState('reconnecting');
    lastMessageAt = Date.now();
    source = new EventSource(EVENTS_URL);
    source.addEventListener('open', () => onState('live'));
    source.addEventListener('snapshot', (event) => {
      lastMessageAt = Date.now();
      onState('live');
      let snapshot;
      try {
        snapshot = JSON.parse(event.data);
      } catch {
        return;
      }
      gotStreamSnapshot = true;
      onSnapshot(snapshot);
    });
    source.addEventListener('error', () => {
      onState('reconnecting');
      // CONNECTING means the browser retries by itself; CLOSED (e.g. an HTTP
      // error status) means it gave up, so retry ourselves.
      if (source.readyState === EventSource.CLOSED) reopenLater();
    });
  }

  function reopenLater() {
    source.close();
    source = null;
    setTimeout(open, RETRY_DELAY_MS);
  }

  function checkSilence() {
    if (source && Date.now() - lastMessageAt > SILENCE_LIMIT_MS) reopenLater();
  }
}
