// Native hot-swap, the admin token form and the recent operations list.

import { adminRequest, clearToken, getToken, setToken } from '../api.js';
import { byId, el, setText, syncRows } from '../dom.js';
import { formatClock } from '../format.js';
import { describeNative } from './header.js';

export class AdminPanel {
  /** @param {import('./statusLine.js').StatusLine} status */
  constructor(status) {
    this.status = status;
    this.nativeDetail = byId('native-detail');
    this.hotSwap = byId('hot-swap');
    this.hotSwap.addEventListener('click', async () => {
      // 202 Accepted with an operation: the swap runs in the background and
      // the next snapshots show it under "Recent operations" and the header.
      await this.status.run('Hot-swap native library', this.hotSwap,
        () => adminRequest('POST', 'admin/native/hot-swap', {}));
    });

    this.tokenForm = byId('token-form');
    this.tokenInput = byId('token-input');
    this.tokenPresent = byId('token-present');
    this.tokenForm.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!this.tokenInput.value.trim()) return;
      setToken(this.tokenInput.value);
      this.tokenInput.value = '';
      this.renderToken();
    });
    byId('token-forget').addEventListener('click', () => {
      clearToken();
      this.renderToken();
    });
    this.renderToken();

    this.operations = byId('operations');
    this.operationsEmpty = byId('operations-empty');
  }

  /** Shows the token input; called after a 401/403. */
  askForToken() {
    clearToken();
    this.renderToken();
    this.tokenInput.focus();
  }

  renderToken() {
    const hasToken = Boolean(getToken());
    this.tokenForm.hidden = hasToken;
    this.tokenPresent.hidden = !hasToken;
  }

  render(latest) {
    this.renderNative(latest.native);
    const operations = [...latest.operations].reverse();
    this.operationsEmpty.hidden = operations.length > 0;
    syncRows(this.operations, operations, (op) => String(op.id),
      () => el('li', {}, el('span', { class: 'pill' }), el('span', { class: 'op-kind' }), el('span', { class: 'op-message' })),
      (item, op) => {
        const [state, kind, message] = item.children;
        setText(state, op.state ?? '?');
        state.dataset.status = op.state ?? '';
        setText(kind, `${op.kind ?? 'operation'} · ${op.startedAt ? formatClock(op.startedAt) : ''}`);
        setText(message, op.message ?? '');
      });
  }

  renderNative(native) {
    setText(this.nativeDetail, native?.path && !native.error ? `${describeNative(native)}\n${native.path}` : describeNative(native));
    this.nativeDetail.classList.toggle('bad', Boolean(native?.error));
  }
}
