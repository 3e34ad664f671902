// Kernel routing panel: backend select and acceleration toggle per kernel.

import { adminRequest } from '../api.js';
import { byId, el, setText, syncRows } from '../dom.js';
import { BACKENDS } from '../format.js';

export class KernelControls {
  /** @param {import('./statusLine.js').StatusLine} status */
  constructor(status) {
    this.status = status;
    this.rows = byId('kernel-controls');
    this.empty = byId('kernel-controls-empty');
  }

  render(latest) {
    const kernels = [...latest.kernels].sort((a, b) => String(a.kernel).localeCompare(String(b.kernel)));
    this.empty.hidden = kernels.length > 0;
    setText(this.empty, 'The server reports no kernels.');
    syncRows(this.rows, kernels, (k) => String(k.kernel), (k) => this.createRow(String(k.kernel)), updateRow);
  }

  createRow(kernel) {
    const select = el('select', { 'data-testid': `backend-select-${kernel}`, 'aria-label': `Backend for ${kernel}` },
      BACKENDS.map((backend) => el('option', { value: backend, text: backend })));
    const toggle = el('input', {
      type: 'checkbox',
      'data-testid': `acceleration-toggle-${kernel}`,
      'aria-label': `Acceleration for ${kernel}`,
    });
    const row = el('div', { class: 'kernel-row' },
      el('div', { class: 'kernel-row-head' },
        el('span', { class: 'mono', text: kernel }),
        el('span', { class: 'pill backend', title: 'Backend that new calls use' })),
      el('div', { class: 'kernel-row-controls' },
        select,
        el('label', { class: 'switch-label' },
          el('span', { class: 'switch' }, toggle, el('span', { class: 'track' })),
          'acceleration')));

    select.addEventListener('change', () =>
      this.update(row, kernel, `Route ${kernel} to ${select.value}`, { backend: select.value }));
    toggle.addEventListener('change', () =>
      this.update(row, kernel, `Turn acceleration ${toggle.checked ? 'on' : 'off'} for ${kernel}`,
        { acceleration: toggle.checked }));
    return row;
  }

  async update(row, kernel, description, change) {
    const controls = [...row.querySelectorAll('select, input')];
    row.dataset.busy = 'true';
    const result = await this.status.run(description, controls,
      () => adminRequest('PUT', `admin/kernels/${encodeURIComponent(kernel)}`, change));
    delete row.dataset.busy;
    // On failure, fall back to what the server last told us.
    const known = result ?? row.lastKernel;
    if (known) updateRow(row, { ...row.lastKernel, ...known });
  }
}

function updateRow(row, kernel) {
  row.lastKernel = kernel;
  if (row.dataset.busy) return;
  const select = row.querySelector('select');
  const toggle = row.querySelector('input');
  const serving = row.querySelector('.pill');

  if (kernel.backend && select.value !== kernel.backend) select.value = kernel.backend;
  toggle.checked = kernel.acceleration !== false;
  setText(serving, `serving ${kernel.serving ?? '–'}`);
  serving.dataset.backend = kernel.serving ?? '';
  // Configured and serving backends differ while a fallback is in effect.
  serving.classList.toggle('diverged', Boolean(kernel.serving && kernel.backend && kernel.serving !== kernel.backend));
}
