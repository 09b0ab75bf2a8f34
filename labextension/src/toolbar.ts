/**
 * The notebook toolbar's agent item: what the agent is doing for this notebook (idle,
 * working, waiting for approval) and how much context is left. Clicking it while the
 * agent works stops the turn. Hidden while the notebook's kernel has no bridge.
 */

import { Widget } from '@lumino/widgets';

import type { NotebookBridge } from './bridge.js';

export class AgentToolbarItem extends Widget {
  constructor(private readonly bridge: NotebookBridge) {
    super({ node: document.createElement('button') });
    this.addClass('jp-codexmax-AgentItem');
    this.addClass('jp-ToolbarButtonComponent');
    const button = this.node as HTMLButtonElement;
    button.type = 'button';
    button.addEventListener('click', this._onClick);
    bridge.stateChanged.connect(this._render, this);
    this._render();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.node.removeEventListener('click', this._onClick);
    this.bridge.stateChanged.disconnect(this._render, this);
    super.dispose();
  }

  private _render(): void {
    const state = this.bridge.state;
    const button = this.node as HTMLButtonElement;
    button.textContent = state.label;
    button.title = state.title;
    button.dataset.phase = state.phase;
    button.disabled = !state.busy;
    this.setHidden(state.phase === 'off' && !state.problem);
  }

  private readonly _onClick = (): void => {
    if (!this.bridge.state.busy) {
      return;
    }
    const button = this.node as HTMLButtonElement;
    button.textContent = 'Agent: stopping';
    void this.bridge.stop().catch(error => {
      console.warn(`jupyter-codexmax: could not stop the agent: ${String(error)}`);
      this._render();
    });
  };
}
