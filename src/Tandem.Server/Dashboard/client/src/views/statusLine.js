// The status line under the controls: the outcome of the last admin call.

import { ApiError } from '../api.js';

// Long enough to read a problem's detail; the text itself stays until replaced.
const HIGHLIGHT_MS = 6_000;

export class StatusLine {
  /**
   * @param {HTMLElement} node
   * @param {() => void} onAuthProblem called after a 401/403 so the token input reappears
   */
  constructor(node, onAuthProblem) {
    this.node = node;
    this.onAuthProblem = onAuthProblem;
    this.timer = null;
  }

  show(kind, text) {
    this.node.textContent = text;
    this.node.dataset.kind = kind;
    this.node.classList.add('fresh');
    clearTimeout(this.timer);
    if (kind !== 'busy') {
      this.timer = setTimeout(() => this.node.classList.remove('fresh'), HIGHLIGHT_MS);
    }
  }

  /**
   * Runs one admin call: disables `controls` and reports progress and outcome.
   * Resolves to the response body, or undefined when the call failed.
   */
  async run(description, controls, request) {
    const elements = [controls].flat().filter(Boolean);
    for (const element of elements) {
      element.disabled = true;
      element.setAttribute('aria-busy', 'true');
    }
    this.show('busy', `${description}…`);
    try {
      const result = await request();
      this.show('ok', `${description}: done`);
      return result;
    } catch (error) {
      this.reportFailure(description, error);
      return undefined;
    } finally {
      for (const element of elements) {
        element.disabled = false;
        element.removeAttribute('aria-busy');
      }
    }
  }

  reportFailure(description, error) {
    if (!(error instanceof ApiError)) {
      this.show('error', `${description} failed: ${error?.message ?? error}`);
      return;
    }
    const parts = [error.title, error.detail].filter(Boolean).join(' — ');
    const code = error.code ? ` [${error.code}]` : '';
    const correlation = error.correlationId ? ` (correlation ${error.correlationId})` : '';
    this.show('error', `${description} failed: ${parts}${code}${correlation}`);
    if (error.isAuthProblem) this.onAuthProblem();
  }
}
