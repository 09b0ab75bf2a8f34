/**
 * What the agent is doing for one notebook, as its events tell (docs/bridge.md, "event"):
 * idle, working, or waiting for an approval; and how much of its context is left. The
 * toolbar item renders it. Nothing here touches JupyterLab.
 */

import type { IAgentEvent } from './protocol.js';

export type Phase = 'off' | 'idle' | 'working' | 'waiting';

export class AgentState {
  /** `off`: no bridge to the kernel (the extension is not loaded there, or it restarted). */
  phase: Phase = 'off';
  /** Approvals asked and not answered yet, by request id. */
  readonly pending = new Set<string>();
  contextTokens: number | null = null;
  contextWindow: number | null = null;
  turn = 0;
  /** Why the bridge is off, when it was refused (another protocol version). */
  problem = '';

  /** The bridge is there (or gone); returns whether anything changed. */
  connected(yes: boolean, problem = ''): boolean {
    const before = this.key();
    this.problem = problem;
    if (!yes) {
      this.phase = 'off';
      this.pending.clear();
    } else if (this.phase === 'off') {
      this.phase = 'idle';
    }
    return this.key() !== before;
  }

  /** One of the agent's events; returns whether the state changed. */
  handle(event: IAgentEvent): boolean {
    const before = this.key();
    const number = (key: string): number | null => {
      const value = event[key];
      return typeof value === 'number' ? value : null;
    };
    switch (event.type) {
      case 'TurnStarted':
        this.turn = number('turn') ?? this.turn + 1;
        this.pending.clear();
        this.phase = 'working';
        break;
      case 'ApprovalRequested':
        if (typeof event.request_id === 'string') {
          this.pending.add(event.request_id);
        }
        this.phase = 'waiting';
        break;
      case 'ApprovalResolved':
        if (typeof event.request_id === 'string') {
          this.pending.delete(event.request_id);
        }
        if (this.phase === 'waiting' && this.pending.size === 0) {
          this.phase = 'working';
        }
        break;
      case 'UsageUpdated':
        this.contextTokens = number('context_tokens') ?? this.contextTokens;
        this.contextWindow = number('context_window') ?? this.contextWindow;
        break;
      case 'CompactionFinished':
        this.contextTokens = number('after') ?? this.contextTokens;
        break;
      case 'TurnFinished':
        this.pending.clear();
        this.phase = 'idle';
        break;
      default:
        break;
    }
    return this.key() !== before;
  }

  /** Whether a click can stop something. */
  get busy(): boolean {
    return this.phase === 'working' || this.phase === 'waiting';
  }

  /** Percent of the context window left, when known. */
  get contextLeft(): number | null {
    if (this.contextTokens === null || !this.contextWindow) {
      return null;
    }
    const left = 1 - this.contextTokens / this.contextWindow;
    return Math.max(0, Math.min(100, Math.round(left * 100)));
  }

  /** The toolbar's text: short, as JupyterLab's own. */
  get label(): string {
    const words: Record<Phase, string> = {
      off: 'Agent: off',
      idle: 'Agent: idle',
      working: 'Agent: working',
      waiting: 'Agent: waiting for approval'
    };
    const left = this.contextLeft;
    return left === null || this.phase === 'off'
      ? words[this.phase]
      : `${words[this.phase]} · ${left}% context left`;
  }

  /** The toolbar's tooltip. */
  get title(): string {
    if (this.phase === 'off') {
      return this.problem || 'jupyter-codexmax is not loaded in this kernel';
    }
    const parts = [`jupyter-codexmax: ${this.label.slice('Agent: '.length)}`];
    if (this.contextTokens !== null && this.contextWindow) {
      parts.push(
        `${this.contextTokens.toLocaleString('en-US')} of ` +
          `${this.contextWindow.toLocaleString('en-US')} tokens of context used`
      );
    }
    if (this.busy) {
      parts.push('click to stop the agent');
    }
    return parts.join('\n');
  }

  private key(): string {
    return [
      this.phase,
      this.pending.size,
      this.contextTokens,
      this.contextWindow,
      this.problem
    ].join('|');
  }
}
