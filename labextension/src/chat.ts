/**
 * The sidebar chat's transcript, from the agent's events and the stored session
 * (docs/sidebar.md): what each row shows, and the meter (context, tokens, cost). The
 * widget (`sidebar.ts`) renders it; nothing here touches the DOM or JupyterLab.
 *
 * `handle` returns the rows that changed, so the widget redraws only those: a streamed
 * text delta touches one row.
 */

import type { IAgentEvent, ISessionView, JSONValue } from './protocol.js';

export type Row =
  | { kind: 'user'; text: string; turn: number }
  | { kind: 'answer'; text: string; done: boolean }
  | { kind: 'reasoning'; text: string }
  | {
      kind: 'tool';
      callId: string;
      name: string;
      summary: string;
      args: string;
      state: 'running' | 'ok' | 'failed';
      output: string;
      duration: number | null;
    }
  | { kind: 'cell'; cellId: string; action: string; diff: string; applied: boolean }
  | { kind: 'file'; path: string; action: string; diff: string }
  | {
      kind: 'run';
      cellId: string;
      status: string;
      count: number | null;
      error: string;
      duration: number;
    }
  | { kind: 'plan'; steps: { step: string; status: string }[]; explanation: string }
  | {
      kind: 'approval';
      requestId: string;
      what: string;
      summary: string;
      detail: string;
      decision: string;
    }
  | { kind: 'notice'; level: 'info' | 'compaction' | 'retry' | 'error'; text: string }
  | { kind: 'summary'; text: string }
  | { kind: 'ledger'; text: string }
  | { kind: 'end'; status: string; text: string };

/** The meter under the input: context used and left, compactions, tokens and cost. */
export interface IMeter {
  contextTokens: number | null;
  contextWindow: number | null;
  compactions: number;
  inputTokens: number;
  outputTokens: number;
  cost: number | null;
  model: string;
}

export type Change = { index: number; added: boolean };

function str(value: JSONValue | undefined): string {
  return typeof value === 'string' ? value : '';
}

function num(value: JSONValue | undefined): number | null {
  return typeof value === 'number' ? value : null;
}

/** Tokens as people read them: 950, 12.3k, 1.2M. */
export function formatTokens(n: number): string {
  if (n < 1000) {
    return String(n);
  }
  if (n < 1_000_000) {
    return `${(n / 1000).toFixed(n < 10_000 ? 2 : 1).replace(/\.?0+$/, '')}k`;
  }
  return `${(n / 1_000_000).toFixed(2).replace(/\.?0+$/, '')}M`;
}

export class Transcript {
  readonly rows: Row[] = [];
  readonly meter: IMeter = {
    contextTokens: null,
    contextWindow: null,
    compactions: 0,
    inputTokens: 0,
    outputTokens: 0,
    cost: null,
    model: ''
  };
  /** A turn runs (a sidebar's or a %%agent cell's). */
  busy = false;
  sessionId = '';
  turns = 0;

  /** The notebook's session so far: its messages, summary and ledger. */
  load(view: ISessionView | null): void {
    this.rows.length = 0;
    this._answer = -1;
    this._reasoning = -1;
    this._tools.clear();
    this._approvals.clear();
    if (!view) {
      this.sessionId = '';
      this.turns = 0;
      return;
    }
    this.sessionId = view.sessionId;
    this.turns = view.turns;
    if (view.summary) {
      this.rows.push({ kind: 'summary', text: view.summary });
    }
    let turn = Math.max(
      0,
      view.turns - view.messages.filter(m => m.role === 'user').length
    );
    for (const message of view.messages) {
      if (message.role === 'user') {
        turn += 1;
        this.rows.push({ kind: 'user', text: message.text, turn });
      } else {
        this.rows.push({ kind: 'answer', text: message.text, done: true });
      }
    }
    const ledger: string[] = [];
    if (view.cellsEdited.length) {
      ledger.push(`cells edited: ${view.cellsEdited.join(', ')}`);
    }
    if (view.filesChanged.length) {
      ledger.push(`files changed: ${view.filesChanged.join(', ')}`);
    }
    if (ledger.length) {
      this.rows.push({ kind: 'ledger', text: ledger.join('\n') });
    }
    if (view.plan.length) {
      this.rows.push({ kind: 'plan', steps: view.plan, explanation: '' });
    }
    this.meter.compactions = view.compactions;
    this.meter.contextTokens = view.contextTokens || this.meter.contextTokens;
    this.meter.inputTokens = view.usage.input;
    this.meter.outputTokens = view.usage.output;
    this.meter.cost = view.usage.cost;
  }

  /** A line of the sidebar's own (a request refused, the kernel cannot load the agent). */
  note(level: 'info' | 'error', text: string): Change[] {
    return [this._push({ kind: 'notice', level, text })];
  }

  /**
   * The kernel has stopped the turn (its `agent.stop` answered): said at once; the turn's
   * own end (`TurnFinished`, once its session is saved) adds no second row.
   */
  stopped(): Change[] {
    if (!this.busy || this._stopShown) {
      return [];
    }
    this._stopShown = true;
    this._answer = -1;
    return [this._push({ kind: 'end', status: 'stopped', text: 'stopped' })];
  }

  /** One of the agent's events (checked by `parseEvent`): the rows that changed. */
  handle(event: IAgentEvent): Change[] {
    switch (event.type) {
      case 'TurnStarted': {
        this.busy = true;
        this._stopShown = false;
        this._answer = -1;
        this._reasoning = -1;
        this.turns = num(event.turn) ?? this.turns + 1;
        return [
          this._push({ kind: 'user', text: str(event.message), turn: this.turns })
        ];
      }
      case 'StepStarted':
        this._answer = -1; // text after a tool call is a new row, below the call
        this._reasoning = -1;
        return [];
      case 'TextDelta':
      case 'AssistantMessage': {
        const text = str(event.text);
        if (event.type === 'AssistantMessage') {
          if (this._answer >= 0) {
            return []; // the deltas had it already
          }
          this._answer = -1;
        }
        if (this._answer < 0) {
          this._answer = this.rows.length;
          return [this._push({ kind: 'answer', text, done: false })];
        }
        const row = this.rows[this._answer];
        if (row.kind === 'answer') {
          row.text += text;
        }
        return [{ index: this._answer, added: false }];
      }
      case 'ReasoningDelta': {
        if (this._reasoning < 0) {
          this._reasoning = this.rows.length;
          return [this._push({ kind: 'reasoning', text: str(event.text) })];
        }
        const row = this.rows[this._reasoning];
        if (row.kind === 'reasoning') {
          row.text += str(event.text);
        }
        return [{ index: this._reasoning, added: false }];
      }
      case 'ToolCallStarted': {
        this._answer = -1;
        const change = this._push({
          kind: 'tool',
          callId: str(event.call_id),
          name: str(event.name),
          summary: str(event.summary),
          args: JSON.stringify(event.arguments, null, 2),
          state: 'running',
          output: '',
          duration: null
        });
        this._tools.set(str(event.call_id), change.index);
        return [change];
      }
      case 'ToolCallFinished': {
        const index = this._tools.get(str(event.call_id));
        const row = index === undefined ? undefined : this.rows[index];
        if (index === undefined || row?.kind !== 'tool') {
          return [];
        }
        row.state = event.ok === true ? 'ok' : 'failed';
        row.summary = str(event.summary) || row.summary;
        row.output = str(event.output);
        row.duration = num(event.duration);
        return [{ index, added: false }];
      }
      case 'CellEdited':
        return [
          this._push({
            kind: 'cell',
            cellId: str(event.cell_id),
            action: str(event.action),
            diff: str(event.diff),
            applied: event.applied !== false
          })
        ];
      case 'FileChanged':
        return [
          this._push({
            kind: 'file',
            path: str(event.path),
            action: str(event.action),
            diff: str(event.diff)
          })
        ];
      case 'CellRan':
        return [
          this._push({
            kind: 'run',
            cellId: str(event.cell_id),
            status: str(event.status),
            count: num(event.execution_count),
            error: str(event.error),
            duration: num(event.duration) ?? 0
          })
        ];
      case 'PlanUpdated': {
        const steps = (Array.isArray(event.steps) ? event.steps : []).map(s => {
          const step = s as { [key: string]: JSONValue };
          return { step: str(step.step), status: str(step.status) || 'pending' };
        });
        const row: Row = { kind: 'plan', steps, explanation: str(event.explanation) };
        const last = this._lastPlan();
        if (last >= 0 && last === this.rows.length - 1) {
          this.rows[last] = row; // the plan moved on: one row, updated
          return [{ index: last, added: false }];
        }
        return [this._push(row)];
      }
      case 'ApprovalRequested': {
        const change = this._push({
          kind: 'approval',
          requestId: str(event.request_id),
          what: str(event.kind),
          summary: str(event.summary),
          detail: str(event.detail),
          decision: ''
        });
        this._approvals.set(str(event.request_id), change.index);
        return [change];
      }
      case 'ApprovalResolved': {
        const index = this._approvals.get(str(event.request_id));
        const row = index === undefined ? undefined : this.rows[index];
        if (index === undefined || row?.kind !== 'approval') {
          return [];
        }
        row.decision = str(event.decision) || 'resolved';
        return [{ index, added: false }];
      }
      case 'UsageUpdated':
        this.meter.contextTokens = num(event.context_tokens);
        this.meter.contextWindow = num(event.context_window);
        this.meter.inputTokens =
          num(event.total_input_tokens) ?? this.meter.inputTokens;
        this.meter.outputTokens =
          num(event.total_output_tokens) ?? this.meter.outputTokens;
        this.meter.cost = num(event.cost_usd);
        this.meter.model = str(event.model) || this.meter.model;
        return [];
      case 'CompactionStarted':
        return [
          this._push({
            kind: 'notice',
            level: 'compaction',
            text:
              `compacting the context (${str(event.reason)}: ` +
              `${formatTokens(num(event.tokens) ?? 0)} of ` +
              `${formatTokens(num(event.limit) ?? 0)} tokens)`
          })
        ];
      case 'CompactionFinished':
        this.meter.compactions = num(event.compactions) ?? this.meter.compactions + 1;
        this.meter.contextTokens = num(event.after) ?? this.meter.contextTokens;
        return [
          this._push({
            kind: 'notice',
            level: 'compaction',
            text:
              `context compacted: ${formatTokens(num(event.before) ?? 0)} → ` +
              `${formatTokens(num(event.after) ?? 0)} tokens (${str(event.method)})`
          })
        ];
      case 'CompactionFailed':
        return [
          this._push({ kind: 'notice', level: 'error', text: str(event.message) })
        ];
      case 'RetryNotice':
        return [
          this._push({
            kind: 'notice',
            level: 'retry',
            text:
              `retrying (${num(event.attempt) ?? 1} of ${num(event.max_retries) ?? 1}) ` +
              `in ${num(event.delay) ?? 0} s: ${str(event.reason)}`
          })
        ];
      case 'Notice':
        return [
          this._push({ kind: 'notice', level: 'info', text: str(event.message) })
        ];
      case 'ErrorEvent':
        this._errored = true;
        return [
          this._push({ kind: 'notice', level: 'error', text: str(event.message) })
        ];
      case 'TurnFinished': {
        this.busy = false;
        this._answer = -1;
        this._reasoning = -1;
        const status = str(event.status);
        const changes: Change[] = [];
        for (const [, index] of this._approvals) {
          const row = this.rows[index];
          if (row.kind === 'approval' && !row.decision) {
            row.decision = 'not answered';
            changes.push({ index, added: false });
          }
        }
        const errored = this._errored;
        this._errored = false;
        if (status === 'failed' && !errored && str(event.error)) {
          changes.push(
            this._push({ kind: 'notice', level: 'error', text: str(event.error) })
          );
        }
        if (status === 'stopped' && !this._stopShown) {
          changes.push(this._push({ kind: 'end', status, text: 'stopped' }));
        }
        this._stopShown = false;
        return changes;
      }
      default:
        return [];
    }
  }

  /** Percent of the context window used, when known. */
  get contextUsed(): number | null {
    const { contextTokens, contextWindow } = this.meter;
    if (contextTokens === null || !contextWindow) {
      return null;
    }
    return Math.max(
      0,
      Math.min(100, Math.round((100 * contextTokens) / contextWindow))
    );
  }

  /** The meter's line: "context 5.23k of 272k (2%), 266.8k left · 0 compactions · ...". */
  get meterText(): string {
    const m = this.meter;
    if (m.contextTokens === null && !m.inputTokens && !this.sessionId) {
      return ''; // no session yet: nothing to count
    }
    const parts: string[] = [];
    if (m.contextTokens !== null && m.contextWindow) {
      const left = Math.max(0, m.contextWindow - m.contextTokens);
      parts.push(
        `context ${formatTokens(m.contextTokens)} of ${formatTokens(m.contextWindow)} ` +
          `(${this.contextUsed}%), ${formatTokens(left)} left`
      );
    } else if (m.contextTokens !== null) {
      parts.push(`context ${formatTokens(m.contextTokens)} tokens`);
    }
    parts.push(`${m.compactions} compaction${m.compactions === 1 ? '' : 's'}`);
    parts.push(
      `${formatTokens(m.inputTokens)} in, ${formatTokens(m.outputTokens)} out`
    );
    parts.push(
      m.cost === null ? 'cost unknown' : `$${m.cost.toFixed(m.cost < 1 ? 4 : 2)}`
    );
    return parts.join(' · ');
  }

  private _push(row: Row): Change {
    this.rows.push(row);
    return { index: this.rows.length - 1, added: true };
  }

  private _lastPlan(): number {
    for (let i = this.rows.length - 1; i >= 0; i--) {
      if (this.rows[i].kind === 'plan') {
        return i;
      }
    }
    return -1;
  }

  private _answer = -1;
  private _reasoning = -1;
  private _errored = false;
  private _stopShown = false;
  private readonly _tools = new Map<string, number>();
  private readonly _approvals = new Map<string, number>();
}
