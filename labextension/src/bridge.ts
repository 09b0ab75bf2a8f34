/**
 * The bridge's frontend half for one open notebook (docs/bridge.md).
 *
 * It registers the comm target on the notebook's kernel, and again whenever the kernel
 * changes or restarts (as ipywidgets' manager does); it answers the kernel's hello with a
 * welcome, and also opens the bridge itself when the kernel already has one open (this
 * page was reloaded). Then it answers the kernel's requests against the notebook on
 * screen: `notebook.get` (unsaved edits included), `notebook.edit` (`edits.ts`: by cell
 * id, one undo step, refused whole when the user changed a cell since the agent read
 * it), `notebook.run` (the notebook's own execution: outputs appear live) and
 * `notebook.save` (the frontend owns the file). The agent's events update `state`.
 *
 * Everything that can fail answers the request with one line and leaves the notebook as
 * it was; nothing is left connected once the notebook closes.
 */

import { PageConfig } from '@jupyterlab/coreutils';
import { CodeCell } from '@jupyterlab/cells';
import type { DocumentRegistry } from '@jupyterlab/docregistry';
import type { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { applyOps, checkOps, notebookJSON, StaleEdit } from './edits.js';
import {
  ICellRun,
  IRequest,
  JSONObject,
  JSONValue,
  KernelMessage as BridgeMessage,
  parseMessage,
  IAgentEvent,
  parseEvent,
  parseOps,
  parseRun,
  PROTOCOL,
  ProtocolError,
  RunStatus,
  TARGET
} from './protocol.js';
import { whyNotLoaded } from './load.js';
import { AgentState } from './state.js';

/** Seconds the frontend waits for the kernel's answer to its own requests. */
const REPLY_TIMEOUT = 30;

type Context = DocumentRegistry.IContext<INotebookModel>;

/** A request answered with an error (its message is the one line the kernel gets). */
class RequestError extends Error {
  constructor(
    message: string,
    readonly stale?: string[]
  ) {
    super(message);
  }
}

function randomId(): string {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
}

export class NotebookBridge {
  constructor(
    readonly context: Context,
    private readonly client: string
  ) {
    context.sessionContext.kernelChanged.connect(this._onKernelChanged, this);
    context.sessionContext.statusChanged.connect(this._onStatusChanged, this);
    // Closing the notebook disposes its session (and kernel connection) before the
    // notebook's own signals say so: the bridge closes first, while it can tell the kernel.
    context.sessionContext.disposed.connect(() => this.dispose());
    const kernel = context.sessionContext.session?.kernel;
    if (kernel) {
      this._attach(kernel);
    }
  }

  /** What the agent is doing (the toolbar item shows it). */
  readonly state = new AgentState();

  /** Emitted when `state` changes. */
  get stateChanged(): ISignal<this, void> {
    return this._stateChanged;
  }

  /** Every event of the agent (checked), whoever started the turn: the sidebar shows them. */
  get eventReceived(): ISignal<this, IAgentEvent> {
    return this._eventReceived;
  }

  /** The notebook's kernel connection, when it has one. */
  get kernel(): Kernel.IKernelConnection | null {
    return this._kernel;
  }

  /**
   * Load jupyter-codexmax in the kernel when it has not (a silent execute: no cell, no
   * output, no execution count), and wait for the bridge it opens. Rejects with one line
   * saying why it cannot, and how to fix it.
   */
  async ensureLoaded(timeout = 20_000): Promise<void> {
    if (this.isConnected) {
      return;
    }
    const kernel = this._kernel;
    if (!kernel || kernel.isDisposed) {
      throw new Error(
        'this notebook has no kernel: start one (Kernel > Change Kernel…), then try again'
      );
    }
    if (!this._loading) {
      this._loading = this._load(kernel, timeout).finally(() => {
        this._loading = null;
      });
    }
    return this._loading;
  }

  private async _load(
    kernel: Kernel.IKernelConnection,
    timeout: number
  ): Promise<void> {
    const info = await kernel.info;
    const language = info.language_info?.name ?? '';
    const before = whyNotLoaded({ language, kernel: kernel.name });
    if (before) {
      throw new Error(before);
    }
    const future = kernel.requestExecute(
      {
        code: '%load_ext jupyter_codexmax',
        silent: true,
        store_history: false,
        allow_stdin: true,
        stop_on_error: false
      },
      true
    );
    const reply = await future.done;
    const content = reply.content;
    if (content.status === 'error') {
      throw new Error(
        whyNotLoaded({
          language,
          kernel: kernel.name,
          ename: content.ename,
          evalue: content.evalue
        }) ?? `loading jupyter-codexmax failed: ${content.ename}: ${content.evalue}`
      );
    }
    if (this.isConnected) {
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this._stateChanged.disconnect(check);
        reject(
          new Error(
            'jupyter-codexmax loaded in the kernel but its bridge did not open within ' +
              `${timeout / 1000} s: restart the kernel and try again`
          )
        );
      }, timeout);
      const check = (): void => {
        if (this.isConnected || this.state.problem) {
          clearTimeout(timer);
          this._stateChanged.disconnect(check);
          if (this.isConnected) {
            resolve();
          } else {
            reject(new Error(this.state.problem));
          }
        }
      };
      this._stateChanged.connect(check);
    });
  }

  /** The kernel's greeting, while the bridge is up. */
  get hello(): string {
    return this._hello;
  }

  get isConnected(): boolean {
    return this._comm !== null;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Panels showing this notebook (a notebook can have several views): cells run in one. */
  addPanel(panel: NotebookPanel): void {
    this._panels.add(panel);
    panel.disposed.connect(() => this._panels.delete(panel));
  }

  /** Ask the kernel to stop the agent's turn (the toolbar item's click). */
  async stop(): Promise<boolean> {
    const result = await this.request('agent.stop', {});
    return result.stopped === true;
  }

  /** Ask the kernel (`agent.*` methods); rejects with its one-line error. */
  request(method: string, params: JSONObject): Promise<JSONObject> {
    const comm = this._comm;
    if (!comm) {
      return Promise.reject(new Error('the kernel has no jupyter-codexmax bridge'));
    }
    const id = `f${++this._requests}`;
    return new Promise<JSONObject>((resolve, reject) => {
      const timer = setTimeout(() => {
        this._waiting.delete(id);
        reject(
          new Error(`the kernel did not answer ${method} within ${REPLY_TIMEOUT} s`)
        );
      }, REPLY_TIMEOUT * 1000);
      this._waiting.set(id, {
        resolve: value => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: error => {
          clearTimeout(timer);
          reject(error);
        }
      });
      this._send({ type: 'request', id, method, params });
    });
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    const kernel = this._kernel;
    const comm = this._comm;
    this._lost('the notebook was closed');
    if (comm && !comm.isDisposed) {
      try {
        comm.close(); // the kernel fails what it waits for at once, and offers it again
      } catch {
        // the kernel is gone already
      }
    }
    if (kernel && !kernel.isDisposed) {
      kernel.removeCommTarget(TARGET, this._onCommOpened);
    }
    this._kernel = null;
    Signal.clearData(this);
  }

  // -- the kernel ------------------------------------------------------------------------

  private _onKernelChanged(): void {
    const kernel = this.context.sessionContext.session?.kernel ?? null;
    if (kernel !== this._kernel) {
      this._lost('the notebook changed kernel');
      if (this._kernel && !this._kernel.isDisposed) {
        this._kernel.removeCommTarget(TARGET, this._onCommOpened);
      }
      this._kernel = null;
      if (kernel) {
        this._attach(kernel);
      }
    }
  }

  private _onStatusChanged(_: unknown, status: Kernel.Status): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      // The kernel's bridge is gone with its state; the next %load_ext offers a new one.
      this._lost('the kernel restarted');
      const kernel = this._kernel;
      if (kernel && !kernel.isDisposed) {
        kernel.registerCommTarget(TARGET, this._onCommOpened);
      }
    }
  }

  private _attach(kernel: Kernel.IKernelConnection): void {
    this._kernel = kernel;
    kernel.registerCommTarget(TARGET, this._onCommOpened);
    // A kernel that already has a bridge open (to this page before a reload, or to
    // another page): open ours, which the kernel takes as the newer one.
    void kernel.info
      .then(() => kernel.requestCommInfo({ target_name: TARGET }))
      .then(reply => {
        const content = reply.content;
        if (
          this._kernel === kernel &&
          !this._comm &&
          content.status === 'ok' &&
          Object.keys(content.comms).length > 0
        ) {
          this._openOwn(kernel);
        }
      })
      .catch(() => undefined); // no kernel after all: nothing to offer
  }

  private _openOwn(kernel: Kernel.IKernelConnection): void {
    const comm = kernel.createComm(TARGET);
    this._adopt(comm);
    comm.open(this._welcome());
  }

  private readonly _onCommOpened = (
    comm: Kernel.IComm,
    msg: KernelMessage.ICommOpenMsg
  ): void => {
    if (this._disposed) {
      comm.close();
      return;
    }
    let hello: BridgeMessage | null = null;
    try {
      hello = parseMessage(msg.content.data);
    } catch (error) {
      console.warn(`jupyter-codexmax: ${String(error)}`);
    }
    if (hello?.type !== 'hello') {
      comm.close();
      return;
    }
    this._hello = hello.kernel;
    this._adopt(comm);
    // Welcome in any case: a kernel of another protocol version says bye, with why.
    comm.send(this._welcome());
  };

  private _adopt(comm: Kernel.IComm): void {
    const previous = this._comm;
    if (previous && previous !== comm) {
      this._lost('another bridge took over');
      try {
        previous.close();
      } catch {
        // gone already
      }
    }
    this._comm = comm;
    comm.onMsg = msg => {
      // Not awaited: the kernel connection waits for a handler's promise before the next
      // message, and a run needs the messages of its own execution.
      this._received(comm, msg.content.data);
    };
    comm.onClose = () => {
      if (this._comm === comm) {
        this._comm = null;
        this._lost('the kernel closed the bridge');
      }
    };
    if (this.state.connected(true)) {
      this._stateChanged.emit();
    }
  }

  private _welcome(): JSONObject {
    const path = this.context.localPath ?? this.context.path;
    const root = PageConfig.getOption('serverRoot');
    const notebook: JSONObject = { path };
    if (root.startsWith('/') || /^[A-Za-z]:[\\/]/.test(root)) {
      notebook.local_path = `${root.replace(/[\\/]+$/, '')}/${path}`;
    }
    return {
      type: 'welcome',
      protocol: PROTOCOL,
      client: this.client,
      client_id: this._clientId,
      notebook
    };
  }

  /** The bridge is gone: waiting requests fail, the state goes off. */
  private _lost(why: string, problem = ''): void {
    const waiting = [...this._waiting.values()];
    this._waiting.clear();
    for (const entry of waiting) {
      entry.reject(new Error(why));
    }
    this._comm = null;
    if (this.state.connected(false, problem)) {
      this._stateChanged.emit();
    }
  }

  private _send(message: JSONObject, comm: Kernel.IComm | null = this._comm): void {
    if (!comm || comm.isDisposed) {
      return;
    }
    try {
      comm.send(message);
    } catch (error) {
      console.warn(`jupyter-codexmax: could not answer the kernel: ${String(error)}`);
    }
  }

  // -- messages --------------------------------------------------------------------------

  private _received(comm: Kernel.IComm, data: unknown): void {
    let message: BridgeMessage | null;
    try {
      message = parseMessage(data);
    } catch (error) {
      const id =
        typeof data === 'object' && data !== null && 'id' in data ? data.id : null;
      this._send(
        {
          type: 'reply',
          id: typeof id === 'string' ? id : null,
          ok: false,
          error: error instanceof Error ? error.message : String(error)
        },
        comm
      );
      return;
    }
    if (message === null || comm !== this._comm) {
      return;
    }
    switch (message.type) {
      case 'request':
        if (message.to !== undefined && message.to !== this._clientId) {
          return; // for another frontend on the same kernel
        }
        void this._serve(comm, message);
        break;
      case 'reply': {
        const entry = message.id === null ? undefined : this._waiting.get(message.id);
        if (entry && message.id !== null) {
          this._waiting.delete(message.id);
          if (message.ok) {
            entry.resolve(message.result);
          } else {
            entry.reject(new Error(message.error));
          }
        }
        break;
      }
      case 'event':
        if (message.to !== undefined && message.to !== this._clientId) {
          return;
        }
        {
          let event: IAgentEvent | null;
          try {
            event = parseEvent(message.event);
          } catch (error) {
            this._send(
              { type: 'reply', id: null, ok: false, error: (error as Error).message },
              comm
            );
            return;
          }
          if (this.state.handle(message.event)) {
            this._stateChanged.emit();
          }
          if (event) {
            this._eventReceived.emit(event);
          }
        }
        break;
      case 'bye':
        console.warn(
          `jupyter-codexmax: the kernel refused the bridge: ${message.reason}`
        );
        this._comm = null;
        this._lost(
          'the kernel refused the bridge',
          `the kernel's jupyter-codexmax refused this extension (${message.reason}): ` +
            'install the same version of jupyter-codexmax in the kernel and in JupyterLab'
        );
        break;
      case 'hello':
        this._hello = message.kernel;
        break;
    }
  }

  private async _serve(comm: Kernel.IComm, request: IRequest): Promise<void> {
    let reply: JSONObject;
    try {
      const result = await this._answer(request);
      reply = { type: 'reply', id: request.id, ok: true, result };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      reply = { type: 'reply', id: request.id, ok: false, error: message };
      if (error instanceof RequestError && error.stale) {
        reply.stale = error.stale;
      }
    }
    if (comm === this._comm) {
      this._send(reply, comm);
    }
  }

  private _answer(request: IRequest): Promise<JSONObject> {
    switch (request.method) {
      case 'notebook.get':
        return Promise.resolve(this._get());
      case 'notebook.edit':
        return Promise.resolve(this._edit(request.params));
      case 'notebook.run':
        return this._run(request.params);
      case 'notebook.save':
        return this._save();
      default:
        return Promise.reject(
          new RequestError(`unknown method ${JSON.stringify(request.method)}`)
        );
    }
  }

  private _model(): INotebookModel {
    const model = this.context.model;
    if (this._disposed || this.context.isDisposed || !model) {
      throw new RequestError('the notebook was closed');
    }
    return model;
  }

  private _get(): JSONObject {
    const model = this._model();
    const notebook = notebookJSON(model.sharedModel);
    const welcome = this._welcome().notebook as JSONObject;
    return { ...welcome, ...notebook, dirty: model.dirty };
  }

  private _edit(params: JSONObject): JSONObject {
    const model = this._model();
    if (model.readOnly) {
      throw new RequestError('the notebook is read-only in JupyterLab');
    }
    const ops = parseOps(params);
    try {
      checkOps(model.sharedModel, ops);
    } catch (error) {
      if (error instanceof StaleEdit) {
        throw new RequestError(error.message, error.ids);
      }
      throw error;
    }
    applyOps(model.sharedModel, ops);
    return {};
  }

  private async _save(): Promise<JSONObject> {
    this._model();
    if (this.context.contentsModel?.writable === false) {
      // JupyterLab would try, fail and open an error dialog at each of the agent's saves:
      // the kernel is told instead, and says it once.
      return { saved: false, read_only: true };
    }
    await this.context.save();
    return { saved: !this.context.model.dirty };
  }

  // -- running cells -----------------------------------------------------------------------

  private _panel(): NotebookPanel {
    for (const panel of this._panels) {
      if (!panel.isDisposed) {
        return panel;
      }
    }
    throw new RequestError('the notebook was closed');
  }

  private async _run(params: JSONObject): Promise<JSONObject> {
    const { ids, timeout } = parseRun(params);
    const panel = this._panel();
    const cells = ids.map(id => {
      const cell = panel.content.widgets.find(widget => widget.model.id === id);
      if (!cell) {
        throw new RequestError(`no cell has id ${JSON.stringify(id)}`);
      }
      if (!(cell instanceof CodeCell)) {
        throw new RequestError(`cell ${id} is not a code cell`);
      }
      return cell;
    });
    const runs: ICellRun[] = [];
    for (const cell of cells) {
      const run = await this._runCell(panel, cell, timeout);
      runs.push(run);
      if (run.status !== 'ok') {
        break;
      }
    }
    return { runs } as unknown as JSONObject;
  }

  private async _runCell(
    panel: NotebookPanel,
    cell: CodeCell,
    timeout: number
  ): Promise<ICellRun> {
    const id = cell.model.id;
    const started = performance.now();
    const sessionContext = panel.sessionContext;
    const kernel = sessionContext.session?.kernel;
    let status: RunStatus = 'ok';
    if (!kernel || sessionContext.isTerminating) {
      status = 'dead';
    } else {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        void kernel.interrupt().catch(() => undefined);
      }, timeout * 1000);
      try {
        const reply = await CodeCell.execute(cell, sessionContext, {
          deletedCells: panel.content.model?.deletedCells ?? [],
          recordTiming: panel.content.notebookConfig.recordTiming
        });
        const content = reply ? reply.content : null;
        if (timedOut) {
          status = 'timeout';
        } else if (content && content.status === 'error') {
          status = content.ename === 'KeyboardInterrupt' ? 'interrupted' : 'error';
        } else if (content && content.status === 'aborted') {
          status = 'interrupted';
        }
      } catch {
        // The execution was cancelled: the kernel restarted or died, or the cell went.
        status = cell.isDisposed ? 'error' : timedOut ? 'timeout' : 'dead';
      } finally {
        clearTimeout(timer);
      }
    }
    const json = cell.isDisposed
      ? {}
      : (cell.model.sharedModel.toJSON() as unknown as JSONObject);
    const outputs = Array.isArray(json.outputs) ? (json.outputs as JSONObject[]) : [];
    const run: ICellRun = {
      id,
      status,
      execution_count:
        typeof json.execution_count === 'number' ? json.execution_count : null,
      outputs,
      duration: (performance.now() - started) / 1000
    };
    const error = outputs.find(output => output.output_type === 'error');
    if (error) {
      run.error = error;
    }
    if (cell.isDisposed) {
      run.status = 'error';
      run.error = {
        ename: 'CellDeleted',
        evalue: 'the cell was deleted while it ran',
        traceback: [] as JSONValue
      };
    }
    return run;
  }

  private _comm: Kernel.IComm | null = null;
  private _kernel: Kernel.IKernelConnection | null = null;
  private _hello = '';
  private _disposed = false;
  private _requests = 0;
  private readonly _clientId = randomId();
  private readonly _panels = new Set<NotebookPanel>();
  private readonly _waiting = new Map<
    string,
    { resolve: (value: JSONObject) => void; reject: (error: Error) => void }
  >();
  private readonly _stateChanged = new Signal<this, void>(this);
  private readonly _eventReceived = new Signal<this, IAgentEvent>(this);
  private _loading: Promise<void> | null = null;
}

export { ProtocolError };
