/**
 * The sidebar chat (docs/sidebar.md): the agent of the active notebook, the same session
 * as its `%%agent` cells. Plain DOM in a Lumino widget; the rows come from `chat.ts`'s
 * transcript (one per notebook, fed by its bridge's events whether or not it is shown),
 * answers are rendered with JupyterLab's markdown renderer, as notebook cells are.
 */

import type { ICodeCellModel } from '@jupyterlab/cells';
import type { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import type { IRenderMime } from '@jupyterlab/rendermime';
import { Widget } from '@lumino/widgets';

import type { NotebookBridge } from './bridge.js';
import { Change, Row, Transcript } from './chat.js';
import {
  APPROVALS,
  Decision,
  EFFORTS,
  IAgentEvent,
  ITurnOptions,
  newestRecord,
  OUTPUT_MIME,
  parseRecord,
  ProtocolError,
  turnParams
} from './protocol.js';

/** The sidebar's defaults (the settings editor's `jupyter-codexmax:sidebar`). */
export interface IChatDefaults {
  effort: string;
  model: string;
  approval: string;
}

/** What the sidebar keeps for one notebook. */
class Thread {
  constructor(
    readonly bridge: NotebookBridge,
    readonly panel: NotebookPanel
  ) {}
  readonly transcript = new Transcript();
  loaded = false;
  /** The kernel's copy of the session was asked for since the bridge came up. */
  synced = false;
  /** Why the agent could not be loaded in the kernel (the header says so). */
  problem = '';
  /** What the user typed for this notebook and did not send yet. */
  draft = '';
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text) {
    node.textContent = text;
  }
  return node;
}

/** A row folded under its title: `kind` names its classes (`jp-codexmax-Chat-<kind>`). */
function folded(kind: string, title: string, text: string): HTMLDetailsElement {
  const node = el('details', `jp-codexmax-Chat-row jp-codexmax-Chat-${kind}`);
  node.append(
    el('summary', '', title),
    el('div', `jp-codexmax-Chat-${kind}Text`, text)
  );
  return node;
}

/** The newest session the notebook keeps: its metadata's, or a `%%agent` output's. */
function storedRecord(model: INotebookModel | null): unknown {
  if (!model) {
    return null;
  }
  const candidates: unknown[] = [model.getMetadata('codexmax')];
  for (let i = 0; i < model.cells.length; i++) {
    const cell = model.cells.get(i);
    if (cell.type !== 'code') {
      continue;
    }
    const outputs = (cell as ICodeCellModel).outputs;
    for (let j = 0; j < outputs.length; j++) {
      const data = outputs.get(j).data[OUTPUT_MIME];
      if (data !== undefined) {
        candidates.push(data);
      }
    }
  }
  return newestRecord(candidates);
}

function message(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0];
}

export class ChatSidebar extends Widget {
  constructor(
    private readonly rendermime: IRenderMimeRegistry,
    defaults: IChatDefaults
  ) {
    super();
    this.id = 'codexmax-chat';
    this.addClass('jp-codexmax-Chat');
    this.title.caption = 'Agent chat (jupyter-codexmax)';
    const node = this.node;
    node.append(this._header, this._list, this._footer);
    this._header.append(this._where, this._phase);
    this._list.className = 'jp-codexmax-Chat-list';
    const controls = el('div', 'jp-codexmax-Chat-controls');
    this._effort = this._select('effort', ['', ...EFFORTS], "effort: kernel's");
    this._approval = this._select('approval', ['', ...APPROVALS], "approval: kernel's");
    this._model.className = 'jp-codexmax-Chat-model';
    this._model.placeholder = "model: kernel's";
    this._model.title = 'The model for the next turns (empty: the kernel’s setting)';
    this._model.setAttribute('aria-label', 'model');
    controls.append(this._effort, this._approval, this._model);
    this._input.className = 'jp-codexmax-Chat-input';
    this._input.placeholder =
      'Ask the agent about this notebook (Enter sends, Shift+Enter: new line)';
    this._input.rows = 3;
    this._input.setAttribute('aria-label', 'message to the agent');
    this._input.addEventListener('keydown', this._onKey);
    const buttons = el('div', 'jp-codexmax-Chat-buttons');
    this._send.className = 'jp-codexmax-Chat-send jp-mod-styled jp-mod-accept';
    this._send.textContent = 'Send';
    this._send.addEventListener('click', () => void this.send());
    this._stop.className = 'jp-codexmax-Chat-stop jp-mod-styled jp-mod-warn';
    this._stop.textContent = 'Stop';
    this._stop.disabled = true;
    this._stop.addEventListener('click', () => void this.stop());
    buttons.append(this._meter, this._stop, this._send);
    this._meter.className = 'jp-codexmax-Chat-meter';
    this._footer.append(controls, this._input, buttons);
    this.setDefaults(defaults);
    this._showEmpty();
  }

  /** The settings editor's defaults for the selectors. */
  setDefaults(defaults: IChatDefaults): void {
    this._effort.value = defaults.effort;
    this._approval.value = defaults.approval;
    this._model.value = defaults.model;
  }

  /** The notebook whose agent the sidebar shows (the active one); null: none open. */
  get panel(): NotebookPanel | null {
    return this._thread?.panel ?? null;
  }

  /** Follow a notebook's bridge (from when it opens): its events feed its transcript. */
  track(panel: NotebookPanel, bridge: NotebookBridge): void {
    if (this._threads.has(bridge)) {
      return;
    }
    const thread = new Thread(bridge, panel);
    this._threads.set(bridge, thread);
    bridge.eventReceived.connect(this._onEvent, this);
    bridge.stateChanged.connect(this._onState, this);
    panel.disposed.connect(() => {
      bridge.eventReceived.disconnect(this._onEvent, this);
      bridge.stateChanged.disconnect(this._onState, this);
      this._threads.delete(bridge);
      if (this._thread === thread) {
        this._thread = null;
        this._showEmpty();
      }
    });
  }

  /** Show the agent of this notebook (the user switched notebooks). */
  setNotebook(panel: NotebookPanel | null, bridge: NotebookBridge | null): void {
    if (!panel || !bridge) {
      return; // another kind of document: keep the last notebook's chat
    }
    this.track(panel, bridge);
    const thread = this._threads.get(bridge) ?? null;
    if (thread === this._thread) {
      return;
    }
    // Each notebook keeps its own unsent text: what was typed for one is never sent to
    // another, and comes back when the user returns to it.
    if (this._thread) {
      this._thread.draft = this._input.value;
    }
    this._input.value = thread?.draft ?? '';
    this._thread = thread;
    this._renderAll();
  }

  /** Send the message box's text as a turn (loading the agent in the kernel if need be). */
  async send(): Promise<void> {
    const thread = this._thread;
    const text = this._input.value;
    if (!thread || !text.trim() || this._sending) {
      return;
    }
    let params;
    try {
      params = turnParams(text, this._options());
    } catch (error) {
      this._note(thread, 'error', message(error));
      return;
    }
    this._sending = true;
    this._send.disabled = true;
    try {
      if (!thread.bridge.isConnected) {
        this._setPhase('loading the agent in the kernel…');
        await thread.bridge.ensureLoaded();
        await this._sync(thread);
      }
      await thread.bridge.request('agent.turn', params);
      if (thread === this._thread && this._input.value === text) {
        this._input.value = '';
      } else if (thread.draft === text) {
        thread.draft = ''; // sent while the user looked at another notebook
      }
    } catch (error) {
      this._note(thread, 'error', message(error));
      if (!thread.bridge.isConnected) {
        thread.problem = 'the agent is not available in this kernel';
      }
    } finally {
      this._sending = false;
      this._send.disabled = false;
      this._renderPhase();
    }
  }

  /** Stop the running turn. */
  async stop(): Promise<void> {
    const thread = this._thread;
    if (!thread) {
      return;
    }
    this._stop.disabled = true;
    this._setPhase('stopping…');
    try {
      if (await thread.bridge.stop()) {
        const changes = thread.transcript.stopped();
        if (thread === this._thread) {
          this._apply(changes);
          this._setPhase('stopped: saving the session…');
        }
      } else {
        this._renderPhase();
      }
    } catch (error) {
      this._note(thread, 'error', message(error));
      this._renderPhase();
    }
  }

  /** Put the caret in the message box. */
  focusInput(): void {
    this._input.focus();
  }

  protected onActivateRequest(): void {
    this.focusInput();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    for (const bridge of [...this._threads.keys()]) {
      bridge.eventReceived.disconnect(this._onEvent, this);
      bridge.stateChanged.disconnect(this._onState, this);
    }
    this._threads.clear();
    super.dispose();
  }

  // -- the session ---------------------------------------------------------------------------

  /** The stored session, from the notebook's metadata (no kernel needed): at once. */
  private _loadStored(thread: Thread): void {
    if (thread.loaded) {
      return;
    }
    const context = thread.panel.context;
    if (!context.isReady) {
      // The file is not read yet: its session shows once it is.
      void context.ready.then(() => {
        if (!thread.loaded && !thread.transcript.rows.length) {
          this._loadStored(thread);
          if (thread === this._thread) {
            this._renderAll();
          }
        }
      });
      return;
    }
    thread.loaded = true;
    try {
      thread.transcript.load(parseRecord(storedRecord(context.model)));
    } catch (error) {
      thread.transcript.load(null);
      thread.transcript.note(
        'error',
        `the notebook's stored session is not readable: ${message(error)}`
      );
    }
  }

  /** The kernel's copy of the session (newer than the file when a turn ran unsaved). */
  private async _sync(thread: Thread): Promise<void> {
    if (thread.synced || !thread.bridge.isConnected) {
      return;
    }
    thread.synced = true;
    try {
      const result = await thread.bridge.request('agent.session', {});
      const view = parseRecord(result.record ?? null);
      const transcript = thread.transcript;
      if (
        view &&
        !transcript.busy &&
        (view.sessionId !== transcript.sessionId || view.turns !== transcript.turns)
      ) {
        transcript.load(view);
        if (thread === this._thread) {
          this._renderAll();
        }
      }
    } catch (error) {
      if (!(error instanceof ProtocolError)) {
        return; // the bridge went: the file's copy stays shown
      }
      this._note(thread, 'error', message(error));
    }
  }

  private _onState(bridge: NotebookBridge): void {
    const thread = this._threads.get(bridge);
    if (!thread) {
      return;
    }
    if (!bridge.isConnected) {
      thread.synced = false;
      thread.transcript.busy = false;
    } else {
      thread.problem = '';
      void this._sync(thread);
    }
    if (thread === this._thread) {
      this._renderPhase();
    }
  }

  private _onEvent(bridge: NotebookBridge, event: IAgentEvent): void {
    const thread = this._threads.get(bridge);
    if (!thread) {
      return;
    }
    this._loadStored(thread);
    const changes = thread.transcript.handle(event);
    if (thread !== this._thread) {
      return;
    }
    this._apply(changes);
    if (event.type === 'TurnStarted' || event.type === 'TurnFinished') {
      this._renderPhase();
    }
    if (event.type === 'UsageUpdated' || event.type === 'CompactionFinished') {
      this._renderMeter();
    }
  }

  private _options(): ITurnOptions {
    return {
      effort: this._effort.value,
      approval: this._approval.value,
      model: this._model.value
    };
  }

  private _note(thread: Thread, level: 'info' | 'error', text: string): void {
    const changes = thread.transcript.note(level, text);
    if (thread === this._thread) {
      this._apply(changes);
    }
  }

  // -- drawing -------------------------------------------------------------------------------

  private _showEmpty(): void {
    this._list.replaceChildren(
      el(
        'div',
        'jp-codexmax-Chat-empty',
        'Open a notebook: the chat works on the active one.'
      )
    );
    this._where.textContent = 'Agent';
    this._setPhase('');
    this._meter.textContent = '';
  }

  private _renderAll(): void {
    const thread = this._thread;
    if (!thread) {
      this._showEmpty();
      return;
    }
    this._loadStored(thread);
    this._where.textContent = thread.panel.context.localPath.split('/').pop() ?? '';
    this._where.title = thread.panel.context.path;
    this._nodes = [];
    this._pending.clear();
    const fragment = document.createDocumentFragment();
    for (const row of thread.transcript.rows) {
      const node = this._row(row);
      this._nodes.push(node);
      fragment.append(node);
    }
    this._list.replaceChildren(fragment);
    if (!thread.transcript.rows.length) {
      this._list.append(
        el(
          'div',
          'jp-codexmax-Chat-empty',
          'No session in this notebook yet: ask for something, as in a %%agent cell. ' +
            'The session is kept in the notebook, shared with its %%agent cells.'
        )
      );
    }
    this._renderPhase();
    this._renderMeter();
    this._scroll(true);
    if (thread.bridge.isConnected) {
      void this._sync(thread);
    }
  }

  private _apply(changes: Change[]): void {
    const thread = this._thread;
    if (!thread) {
      return;
    }
    const rows = thread.transcript.rows;
    let added = false;
    for (const change of changes) {
      if (change.added) {
        if (!added && this._nodes.length === 0) {
          this._list.replaceChildren();
        }
        added = true;
        const node = this._row(rows[change.index]);
        this._nodes[change.index] = node;
        this._list.append(node);
      } else {
        this._pending.add(change.index);
      }
    }
    if (this._pending.size && this._frame === 0) {
      this._frame = requestAnimationFrame(() => this._flush());
    }
    if (added) {
      this._scroll();
    }
  }

  /** Rows changed since the last frame, drawn again (a streamed answer: once a frame). */
  private _flush(): void {
    this._frame = 0;
    const thread = this._thread;
    if (!thread) {
      return;
    }
    for (const index of this._pending) {
      const old = this._nodes[index];
      const row = thread.transcript.rows[index];
      if (!old || !row) {
        continue;
      }
      if (row.kind === 'answer' || row.kind === 'reasoning') {
        this._fillText(old, row);
      } else {
        const node = this._row(row);
        if (old instanceof HTMLDetailsElement && node instanceof HTMLDetailsElement) {
          node.open = old.open;
        }
        old.replaceWith(node);
        this._nodes[index] = node;
      }
    }
    this._pending.clear();
    this._scroll();
  }

  /** Keep the newest row in view, unless the user scrolled up to read. */
  private _scroll(force = false): void {
    const list = this._list;
    const near = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    if (force || near) {
      list.scrollTop = list.scrollHeight;
    }
  }

  private _setPhase(text: string): void {
    this._phase.textContent = text;
  }

  private _renderPhase(): void {
    const thread = this._thread;
    if (!thread) {
      return;
    }
    const busy = thread.transcript.busy;
    this._stop.disabled = !busy;
    this.node.dataset.busy = busy ? 'true' : 'false';
    const bridge = thread.bridge;
    let phase = busy ? 'working…' : 'idle';
    if (!bridge.isConnected) {
      phase =
        bridge.state.problem ||
        thread.problem ||
        'the agent loads with your first message';
    } else if (bridge.state.phase === 'waiting') {
      phase = 'waiting for your approval';
    }
    if (!this._sending) {
      this._setPhase(phase);
    }
  }

  private _renderMeter(): void {
    const transcript = this._thread?.transcript;
    if (!transcript) {
      return;
    }
    this._meter.textContent = transcript.meterText;
    const used = transcript.contextUsed;
    this._meter.title =
      used === null ? 'context: not known yet' : `${used}% of the context window used`;
  }

  private _select(
    name: string,
    values: readonly string[],
    empty: string
  ): HTMLSelectElement {
    const select = el('select', `jp-codexmax-Chat-select-${name}`);
    select.setAttribute('aria-label', name);
    select.title = `${name} for the next turns`;
    for (const value of values) {
      const option = el('option', '', value ? `${name}: ${value}` : empty);
      option.value = value;
      select.append(option);
    }
    return select;
  }

  private _fillText(node: HTMLElement, row: Row): void {
    if (row.kind === 'reasoning') {
      const body = node.querySelector('.jp-codexmax-Chat-reasoningText');
      if (body) {
        body.textContent = row.text;
      }
      return;
    }
    if (row.kind !== 'answer') {
      return;
    }
    let renderer = this._renderers.get(node);
    if (!renderer) {
      renderer = this.rendermime.createRenderer('text/markdown');
      this._renderers.set(node, renderer);
      node.replaceChildren(renderer.node);
    }
    node.dataset.chars = String(row.text.length);
    void renderer
      .renderModel(
        new MimeModel({ data: { 'text/markdown': row.text }, trusted: false })
      )
      .catch(() => {
        node.textContent = row.text; // the renderer failed: the text as it is
      });
  }

  private _row(row: Row): HTMLElement {
    switch (row.kind) {
      case 'user': {
        const node = el('div', 'jp-codexmax-Chat-row jp-codexmax-Chat-user');
        node.append(el('div', 'jp-codexmax-Chat-userText', row.text));
        return node;
      }
      case 'answer': {
        const node = el('div', 'jp-codexmax-Chat-row jp-codexmax-Chat-answer');
        this._fillText(node, row);
        return node;
      }
      case 'reasoning':
        return folded('reasoning', 'Reasoning summary', row.text);
      case 'tool': {
        const node = el('details', 'jp-codexmax-Chat-row jp-codexmax-Chat-tool');
        node.dataset.state = row.state;
        const mark = row.state === 'running' ? '…' : row.state === 'ok' ? '✓' : '✗';
        const time = row.duration === null ? '' : ` · ${row.duration.toFixed(1)} s`;
        node.append(
          el('summary', '', `${mark} ${row.name}: ${row.summary}${time}`),
          el('div', 'jp-codexmax-Chat-label', 'arguments'),
          el('pre', 'jp-codexmax-Chat-args', row.args)
        );
        if (row.state !== 'running') {
          node.append(
            el('div', 'jp-codexmax-Chat-label', 'result'),
            el('pre', 'jp-codexmax-Chat-result', row.output || row.summary)
          );
        }
        return node;
      }
      case 'cell': {
        const node = el('details', 'jp-codexmax-Chat-row jp-codexmax-Chat-cell');
        const summary = el('summary');
        const verb = {
          insert: 'added',
          replace: 'edited',
          delete: 'deleted',
          move: 'moved'
        }[row.action];
        summary.append(
          `${row.applied ? '' : 'proposed: '}${verb ?? row.action} cell `,
          this._cellLink(row.cellId)
        );
        node.append(summary, el('pre', 'jp-codexmax-Chat-diff', row.diff));
        return node;
      }
      case 'file': {
        const node = el('details', 'jp-codexmax-Chat-row jp-codexmax-Chat-file');
        node.append(
          el('summary', '', `${row.action} ${row.path}`),
          el('pre', 'jp-codexmax-Chat-diff', row.diff)
        );
        return node;
      }
      case 'run': {
        const node = el('div', 'jp-codexmax-Chat-row jp-codexmax-Chat-run');
        node.dataset.status = row.status;
        const count = row.count === null ? '' : ` [${row.count}]`;
        node.append('ran cell ', this._cellLink(row.cellId), `${count}: ${row.status}`);
        node.append(` · ${row.duration.toFixed(1)} s`);
        if (row.error) {
          node.append(el('div', 'jp-codexmax-Chat-runError', row.error));
        }
        return node;
      }
      case 'plan': {
        const node = el('div', 'jp-codexmax-Chat-row jp-codexmax-Chat-plan');
        node.append(el('div', 'jp-codexmax-Chat-label', 'Plan'));
        if (row.explanation) {
          node.append(el('div', '', row.explanation));
        }
        const list = el('ol');
        for (const step of row.steps) {
          const item = el('li', '', step.step);
          item.dataset.status = step.status;
          item.title = step.status.replace('_', ' ');
          list.append(item);
        }
        node.append(list);
        return node;
      }
      case 'approval':
        return this._approvalRow(row);
      case 'notice': {
        const node = el(
          'div',
          `jp-codexmax-Chat-row jp-codexmax-Chat-notice`,
          row.text
        );
        node.dataset.level = row.level;
        if (row.level === 'error') {
          node.setAttribute('role', 'alert');
        }
        return node;
      }
      case 'summary':
        return folded('summary', 'Earlier in this session (compacted)', row.text);
      case 'ledger':
        return el('div', 'jp-codexmax-Chat-row jp-codexmax-Chat-ledger', row.text);
      case 'end':
        return el(
          'div',
          'jp-codexmax-Chat-row jp-codexmax-Chat-end',
          row.text || row.status
        );
    }
  }

  private _approvalRow(row: Extract<Row, { kind: 'approval' }>): HTMLElement {
    const node = el('div', 'jp-codexmax-Chat-row jp-codexmax-Chat-approval');
    node.dataset.requestId = row.requestId;
    node.append(
      el(
        'div',
        'jp-codexmax-Chat-approvalWhat',
        `Approval needed (${row.what}): ${row.summary}`
      )
    );
    if (row.detail) {
      node.append(el('pre', 'jp-codexmax-Chat-args', row.detail));
    }
    if (row.decision) {
      const said: Record<string, string> = {
        approve: 'approved',
        approve_session: 'approved for this session',
        deny: 'denied'
      };
      node.append(
        el('div', 'jp-codexmax-Chat-decision', said[row.decision] ?? row.decision)
      );
      return node;
    }
    const buttons = el('div', 'jp-codexmax-Chat-approvalButtons');
    const choices: [Decision, string, string][] = [
      ['approve', 'Approve', 'jp-mod-accept'],
      ['approve_session', 'Approve for this session', ''],
      ['deny', 'Deny', 'jp-mod-reject']
    ];
    for (const [decision, label, style] of choices) {
      const button = el('button', `jp-mod-styled ${style}`, label);
      button.dataset.decision = decision;
      button.addEventListener('click', () => {
        buttons.querySelectorAll('button').forEach(b => (b.disabled = true));
        const thread = this._thread;
        void thread?.bridge
          .request('agent.approve', { request_id: row.requestId, decision })
          .catch(error => this._note(thread, 'error', message(error)));
      });
      buttons.append(button);
    }
    node.append(buttons);
    return node;
  }

  /** A link that scrolls the notebook to the cell (and selects it). */
  private _cellLink(cellId: string): HTMLElement {
    const link = el('a', 'jp-codexmax-Chat-cellLink', cellId);
    link.href = '#';
    link.title = 'Show this cell in the notebook';
    link.dataset.cellId = cellId;
    link.addEventListener('click', event => {
      event.preventDefault();
      const panel = this.panel;
      if (!panel) {
        return;
      }
      const notebook = panel.content;
      const index = notebook.widgets.findIndex(cell => cell.model.id === cellId);
      if (index < 0) {
        link.title = 'This cell is no longer in the notebook';
        return;
      }
      notebook.activeCellIndex = index;
      void notebook.scrollToItem(index, 'center');
    });
    return link;
  }

  private readonly _onKey = (event: KeyboardEvent): void => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      void this.send();
    }
  };

  private _thread: Thread | null = null;
  private _nodes: HTMLElement[] = [];
  private _frame = 0;
  private _sending = false;
  private readonly _pending = new Set<number>();
  private readonly _threads = new Map<NotebookBridge, Thread>();
  private readonly _renderers = new WeakMap<HTMLElement, IRenderMime.IRenderer>();
  private readonly _header = el('div', 'jp-codexmax-Chat-header');
  private readonly _where = el('span', 'jp-codexmax-Chat-where');
  private readonly _phase = el('span', 'jp-codexmax-Chat-phase');
  private readonly _list = el('div');
  private readonly _footer = el('div', 'jp-codexmax-Chat-footer');
  private readonly _effort: HTMLSelectElement;
  private readonly _approval: HTMLSelectElement;
  private readonly _model = el('input');
  private readonly _input = el('textarea');
  private readonly _send = el('button');
  private readonly _stop = el('button');
  private readonly _meter = el('span');
}
