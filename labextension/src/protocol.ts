/**
 * The bridge's messages, as docs/bridge.md writes them down (protocol version 2).
 *
 * Everything that arrives from the kernel is checked here before it is used: a message
 * that is not what the protocol says is refused with a one-line `ProtocolError`, and
 * nothing else is done with it. Nothing in this module touches JupyterLab.
 */

/** The comm target both halves use. */
export const TARGET = 'jupyter_codexmax.bridge';

/** The protocol version this extension speaks (docs/bridge.md). */
export const PROTOCOL = 2;

/** Any JSON value. */
export type JSONValue =
  null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

/** A JSON object. */
export type JSONObject = { [key: string]: JSONValue };

/** A message that does not follow the protocol (one line: what, and why). */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

// -- messages ---------------------------------------------------------------------------

/** The kernel's greeting (on a comm it opened, or in answer to our welcome). */
export interface IHello {
  type: 'hello';
  protocol: number;
  kernel: string;
}

/** The frontend's answer to a hello, or the data of a comm it opens. */
export interface IWelcome {
  type: 'welcome';
  protocol: number;
  client: string;
  /** This frontend's own id: the kernel addresses its requests to it (`to`). */
  client_id: string;
  notebook: { path: string; local_path?: string };
}

/** A request, either way. */
export interface IRequest {
  type: 'request';
  id: string;
  method: string;
  params: JSONObject;
  /** The frontend the kernel means (another frontend on the same kernel ignores it). */
  to?: string;
}

/** An answer to a request. */
export type IReply =
  | { type: 'reply'; id: string | null; ok: true; result: JSONObject }
  | {
      type: 'reply';
      id: string | null;
      ok: false;
      error: string;
      /** `notebook.edit`: the cells changed in the notebook since the kernel read them. */
      stale?: string[];
    };

/** One of the agent's events (events.py: `type` is the event's class name). */
export interface IAgentEvent {
  type: string;
  [key: string]: JSONValue;
}

/** The agent's events, sent as they happen. */
export interface IEventMessage {
  type: 'event';
  event: IAgentEvent;
  to?: string;
}

/** The kernel says goodbye (a welcome it could not accept). */
export interface IBye {
  type: 'bye';
  reason: string;
}

/** What the kernel may send. */
export type KernelMessage = IHello | IRequest | IReply | IEventMessage | IBye;

function isObject(value: unknown): value is { [key: string]: unknown } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) {
    return 'null';
  }
  return Array.isArray(value) ? 'a list' : `a ${typeof value}`;
}

/**
 * A message from the kernel, checked. Unknown notification types come back as `null`
 * (later protocol versions may add some); anything malformed is a `ProtocolError`.
 */
export function parseMessage(data: unknown): KernelMessage | null {
  if (!isObject(data)) {
    throw new ProtocolError(
      `a bridge message must be a JSON object, not ${describe(data)}`
    );
  }
  const kind = data.type;
  switch (kind) {
    case 'hello':
      if (typeof data.protocol !== 'number') {
        throw new ProtocolError('hello: protocol must be a number');
      }
      return {
        type: 'hello',
        protocol: data.protocol,
        kernel: typeof data.kernel === 'string' ? data.kernel : ''
      };
    case 'request': {
      if (typeof data.id !== 'string' || !data.id) {
        throw new ProtocolError('request: id must be a non-empty string');
      }
      if (typeof data.method !== 'string') {
        throw new ProtocolError(`request ${data.id}: method must be a string`);
      }
      const params = data.params ?? {};
      if (!isObject(params)) {
        throw new ProtocolError(`request ${data.id}: params must be an object`);
      }
      return {
        type: 'request',
        id: data.id,
        method: data.method,
        params: params as JSONObject,
        ...(typeof data.to === 'string' ? { to: data.to } : {})
      };
    }
    case 'reply': {
      const id = typeof data.id === 'string' ? data.id : null;
      if (data.ok === true) {
        const result = isObject(data.result) ? (data.result as JSONObject) : {};
        return { type: 'reply', id, ok: true, result };
      }
      return {
        type: 'reply',
        id,
        ok: false,
        error: typeof data.error === 'string' ? data.error : 'the kernel failed'
      };
    }
    case 'event': {
      const event = data.event;
      if (!isObject(event) || typeof event.type !== 'string') {
        throw new ProtocolError('event: event must be an object with a type');
      }
      return {
        type: 'event',
        event: event as IAgentEvent,
        ...(typeof data.to === 'string' ? { to: data.to } : {})
      };
    }
    case 'bye':
      return {
        type: 'bye',
        reason: typeof data.reason === 'string' ? data.reason : ''
      };
    default:
      if (typeof kind !== 'string') {
        throw new ProtocolError('a bridge message needs a type');
      }
      return null; // a notification of a later version: ignored
  }
}

// -- notebook.edit ------------------------------------------------------------------------

export type CellType = 'code' | 'markdown' | 'raw';

export const CELL_TYPES: readonly CellType[] = ['code', 'markdown', 'raw'];

export interface IInsertOp {
  op: 'insert';
  index: number;
  id: string;
  cell_type: CellType;
  source: string;
  metadata?: JSONObject;
  outputs?: JSONObject[];
  execution_count?: number | null;
  attachments?: JSONObject;
}

export interface ISetSourceOp {
  op: 'set_source';
  id: string;
  source: string;
  cell_type?: CellType;
  /** The cell's source as the kernel last knew it: refused when the cell differs. */
  base?: string;
}

export interface IDeleteOp {
  op: 'delete';
  id: string;
  base?: string;
}

export interface IMoveOp {
  op: 'move';
  id: string;
  index: number;
}

export interface ISetMetadataOp {
  op: 'set_metadata';
  key: string;
  /** `null` removes the key. */
  value: JSONValue;
}

export interface ISetOutputsOp {
  op: 'set_outputs';
  id: string;
  outputs: JSONObject[];
  execution_count?: number | null;
}

export type EditOp =
  IInsertOp | ISetSourceOp | IDeleteOp | IMoveOp | ISetMetadataOp | ISetOutputsOp;

function need<T>(
  op: { [key: string]: unknown },
  key: string,
  where: string,
  check: (value: unknown) => value is T,
  what: string
): T {
  const value = op[key];
  if (!check(value)) {
    throw new ProtocolError(`${where}: ${key} must be ${what}`);
  }
  return value;
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isIndex = (v: unknown): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isCellType = (v: unknown): v is CellType =>
  typeof v === 'string' && (CELL_TYPES as readonly string[]).includes(v);
const isObjectList = (v: unknown): v is JSONObject[] =>
  Array.isArray(v) && v.every(isObject);
const isCount = (v: unknown): v is number | null =>
  v === null || (typeof v === 'number' && Number.isInteger(v));

function optional<T>(
  op: { [key: string]: unknown },
  key: string,
  where: string,
  check: (value: unknown) => value is T,
  what: string
): { [key: string]: T } {
  if (op[key] === undefined) {
    return {};
  }
  return { [key]: need(op, key, where, check, what) };
}

/** The ops of a `notebook.edit` request, each checked; nothing applied. */
export function parseOps(params: JSONObject): EditOp[] {
  const ops = params.ops;
  if (!Array.isArray(ops) || ops.length === 0) {
    throw new ProtocolError('notebook.edit: ops must be a non-empty list');
  }
  return ops.map((raw, number) => {
    const where = `op ${number + 1}`;
    if (!isObject(raw)) {
      throw new ProtocolError(`${where}: must be an object, not ${describe(raw)}`);
    }
    const kind = raw.op;
    switch (kind) {
      case 'insert':
        return {
          op: 'insert',
          index: need(raw, 'index', where, isIndex, 'a position (0 or more)'),
          id: need(raw, 'id', where, isId, 'a cell id'),
          cell_type: need(raw, 'cell_type', where, isCellType, 'code, markdown or raw'),
          source: need(raw, 'source', where, isString, 'a string'),
          ...optional(raw, 'metadata', where, isObject, 'an object'),
          ...optional(raw, 'outputs', where, isObjectList, 'a list of outputs'),
          ...optional(raw, 'execution_count', where, isCount, 'a number or null'),
          ...optional(raw, 'attachments', where, isObject, 'an object')
        };
      case 'set_source':
        return {
          op: 'set_source',
          id: need(raw, 'id', where, isId, 'a cell id'),
          source: need(raw, 'source', where, isString, 'a string'),
          ...optional(raw, 'cell_type', where, isCellType, 'code, markdown or raw'),
          ...optional(raw, 'base', where, isString, 'a string')
        };
      case 'delete':
        return {
          op: 'delete',
          id: need(raw, 'id', where, isId, 'a cell id'),
          ...optional(raw, 'base', where, isString, 'a string')
        };
      case 'move':
        return {
          op: 'move',
          id: need(raw, 'id', where, isId, 'a cell id'),
          index: need(raw, 'index', where, isIndex, 'a position (0 or more)')
        };
      case 'set_metadata':
        if (!('value' in raw)) {
          throw new ProtocolError(
            `${where}: set_metadata needs a value (null removes)`
          );
        }
        return {
          op: 'set_metadata',
          key: need(raw, 'key', where, isId, 'a non-empty string'),
          value: raw.value
        };
      case 'set_outputs':
        return {
          op: 'set_outputs',
          id: need(raw, 'id', where, isId, 'a cell id'),
          outputs: need(raw, 'outputs', where, isObjectList, 'a list of outputs'),
          ...optional(raw, 'execution_count', where, isCount, 'a number or null')
        };
      default:
        throw new ProtocolError(`${where}: unknown op ${JSON.stringify(kind ?? null)}`);
    }
  });
}

// -- notebook.run -------------------------------------------------------------------------

export type RunStatus = 'ok' | 'error' | 'timeout' | 'interrupted' | 'dead';

export interface IRunParams {
  ids: string[];
  /** Seconds each cell may run before the frontend interrupts the kernel. */
  timeout: number;
}

export interface ICellRun {
  id: string;
  status: RunStatus;
  execution_count: number | null;
  outputs: JSONObject[];
  duration: number;
  error?: JSONObject;
}

/** The params of a `notebook.run` request, checked. */
export function parseRun(params: JSONObject): IRunParams {
  const ids = params.ids;
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every(isId)) {
    throw new ProtocolError('notebook.run: ids must be a non-empty list of cell ids');
  }
  const timeout = params.timeout ?? 60;
  if (typeof timeout !== 'number' || !(timeout > 0)) {
    throw new ProtocolError(
      'notebook.run: timeout must be a number of seconds above 0'
    );
  }
  return { ids: ids, timeout };
}

/** The methods the kernel may call. */
export const METHODS = [
  'notebook.get',
  'notebook.edit',
  'notebook.run',
  'notebook.save'
] as const;

// -- the agent's methods (the sidebar chat) -----------------------------------------------

/** The methods the frontend may call (bridge.py's `AGENT_METHODS`). */
export const AGENT_METHODS = [
  'agent.session',
  'agent.turn',
  'agent.stop',
  'agent.approve',
  'agent.status'
] as const;

export type AgentMethod = (typeof AGENT_METHODS)[number];

/** Reasoning efforts (models.py's `EFFORTS`). */
export const EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'] as const;

/** Approval levels (config's `APPROVALS`). */
export const APPROVALS = ['read-only', 'ask', 'auto'] as const;

/** Answers to an approval request. */
export const DECISIONS = ['approve', 'approve_session', 'deny'] as const;

export type Decision = (typeof DECISIONS)[number];

/** What a sidebar may choose for a turn (empty: the kernel's setting). */
export interface ITurnOptions {
  effort?: string;
  model?: string;
  approval?: string;
}

/** The params of `agent.turn`, checked as the kernel checks them. */
export function turnParams(message: string, options: ITurnOptions = {}): JSONObject {
  if (!message.trim()) {
    throw new ProtocolError('agent.turn: message must be a non-empty string');
  }
  const params: JSONObject = { message };
  const { effort, model, approval } = options;
  if (effort) {
    if (!(EFFORTS as readonly string[]).includes(effort)) {
      throw new ProtocolError(
        `agent.turn: effort must be one of ${EFFORTS.join(', ')}, not '${effort}'`
      );
    }
    params.effort = effort;
  }
  if (approval) {
    if (!(APPROVALS as readonly string[]).includes(approval)) {
      throw new ProtocolError(
        `agent.turn: approval must be one of ${APPROVALS.join(', ')}, not '${approval}'`
      );
    }
    params.approval = approval;
  }
  if (model && model.trim()) {
    params.model = model.trim();
  }
  return params;
}

// -- the agent's events -------------------------------------------------------------------

type Kind = 'string' | 'number' | 'boolean' | 'object' | 'list' | 'number?' | 'string?';

/** The fields a sidebar reads, by event type (docs/bridge.md, "Notifications"). */
const EVENT_FIELDS: Record<string, Record<string, Kind>> = {
  TurnStarted: { turn: 'number', message: 'string' },
  StepStarted: { turn: 'number', step: 'number' },
  TextDelta: { text: 'string' },
  ReasoningDelta: { text: 'string' },
  AssistantMessage: { text: 'string' },
  ToolCallStarted: {
    call_id: 'string',
    name: 'string',
    arguments: 'object',
    summary: 'string'
  },
  ToolCallFinished: {
    call_id: 'string',
    name: 'string',
    ok: 'boolean',
    summary: 'string',
    duration: 'number',
    output: 'string'
  },
  CellEdited: {
    cell_id: 'string',
    action: 'string',
    diff: 'string',
    applied: 'boolean'
  },
  FileChanged: { path: 'string', action: 'string', diff: 'string' },
  CellRan: {
    cell_id: 'string',
    status: 'string',
    duration: 'number',
    execution_count: 'number?',
    output: 'string',
    error: 'string?'
  },
  PlanUpdated: { steps: 'list', explanation: 'string' },
  ApprovalRequested: {
    request_id: 'string',
    kind: 'string',
    summary: 'string',
    detail: 'string'
  },
  ApprovalResolved: { request_id: 'string', decision: 'string', reason: 'string' },
  UsageUpdated: {
    total_input_tokens: 'number',
    total_output_tokens: 'number',
    context_tokens: 'number',
    context_window: 'number',
    cost_usd: 'number?',
    model: 'string'
  },
  CompactionStarted: { reason: 'string', tokens: 'number', limit: 'number' },
  CompactionFinished: {
    method: 'string',
    before: 'number',
    after: 'number',
    compactions: 'number'
  },
  CompactionFailed: { message: 'string' },
  RetryNotice: {
    attempt: 'number',
    max_retries: 'number',
    delay: 'number',
    reason: 'string'
  },
  Notice: { message: 'string' },
  ErrorEvent: { message: 'string', fatal: 'boolean' },
  TurnFinished: {
    turn: 'number',
    status: 'string',
    final_text: 'string',
    error: 'string?'
  }
};

function fits(value: unknown, kind: Kind): boolean {
  switch (kind) {
    case 'list':
      return Array.isArray(value);
    case 'object':
      return isObject(value);
    case 'number?':
      return value === undefined || value === null || typeof value === 'number';
    case 'string?':
      return value === undefined || value === null || typeof value === 'string';
    default:
      return typeof value === kind;
  }
}

/**
 * One of the agent's events, its fields checked (a wrong type is a `ProtocolError`);
 * `null` for an event type the sidebar does not show (a later version's).
 */
export function parseEvent(event: IAgentEvent): IAgentEvent | null {
  const fields = EVENT_FIELDS[event.type];
  if (!fields) {
    return null;
  }
  for (const [key, kind] of Object.entries(fields)) {
    if (!fits(event[key], kind)) {
      throw new ProtocolError(
        `event ${event.type}: ${key} must be ${kind.replace('?', ' or null')}, ` +
          `not ${describe(event[key])}`
      );
    }
  }
  if (event.type === 'PlanUpdated') {
    for (const step of event.steps as JSONValue[]) {
      if (!isObject(step) || typeof step.step !== 'string') {
        throw new ProtocolError('event PlanUpdated: each step needs a step (a string)');
      }
    }
  }
  return event;
}

// -- the stored session -------------------------------------------------------------------

/** A message of the stored session, as the sidebar shows it. */
export interface IStoredMessage {
  role: 'user' | 'assistant';
  text: string;
}

/** The notebook's session so far (docs/session.md), as much as the sidebar shows. */
export interface ISessionView {
  sessionId: string;
  turns: number;
  compactions: number;
  contextTokens: number;
  messages: IStoredMessage[];
  /** The last compaction's hand-off summary (text), when it is one the model wrote. */
  summary: string | null;
  /** The task ledger's plan and what it touched. */
  plan: { step: string; status: string }[];
  task: string;
  cellsEdited: string[];
  filesChanged: string[];
  usage: { input: number; output: number; cost: number | null };
}

function itemText(item: { [key: string]: unknown }): string {
  const content = item.content;
  if (typeof content === 'string') {
    return content;
  }
  if (!Array.isArray(content)) {
    return '';
  }
  return content
    .map(part =>
      isObject(part) &&
      ['input_text', 'output_text', 'text'].includes(String(part.type)) &&
      typeof part.text === 'string'
        ? part.text
        : ''
    )
    .join('');
}

const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];

const count = (value: unknown): number =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0;

/**
 * A session record (the notebook's `codexmax` metadata, or `agent.session`'s `record`),
 * checked: `null` for none; a `ProtocolError` for something that is not a record.
 */
export function parseRecord(value: unknown): ISessionView | null {
  if (value === null || value === undefined) {
    return null;
  }
  if (!isObject(value) || typeof value.session_id !== 'string') {
    throw new ProtocolError('the session record needs a session_id');
  }
  if (!Array.isArray(value.messages)) {
    throw new ProtocolError('the session record: messages must be a list');
  }
  const messages: IStoredMessage[] = [];
  for (const item of value.messages) {
    if (!isObject(item)) {
      continue;
    }
    const text = itemText(item);
    if (text) {
      messages.push({ role: item.role === 'assistant' ? 'assistant' : 'user', text });
    }
  }
  const summaryItem = value.summary;
  const summary =
    isObject(summaryItem) && summaryItem.type === 'message'
      ? itemText(summaryItem)
      : null;
  const ledger = isObject(value.ledger) ? value.ledger : {};
  const plan = Array.isArray(ledger.plan)
    ? ledger.plan.filter(isObject).map(s => ({
        step: typeof s.step === 'string' ? s.step : '',
        status: typeof s.status === 'string' ? s.status : 'pending'
      }))
    : [];
  const usage = isObject(value.usage) ? value.usage : {};
  return {
    sessionId: value.session_id,
    turns: count(value.turns),
    compactions: count(value.compactions),
    contextTokens: count(value.context_tokens),
    messages,
    summary: summary || null,
    plan,
    task: typeof ledger.task === 'string' ? ledger.task : '',
    cellsEdited: strings(ledger.cells_edited),
    filesChanged: strings(ledger.files_changed),
    usage: {
      input: count(usage.input_tokens),
      output: count(usage.output_tokens),
      cost: typeof usage.cost_usd === 'number' ? usage.cost_usd : null
    }
  };
}

/** The mimetype under which a kernel keeps the record in a `%%agent` cell's output. */
export const OUTPUT_MIME = 'application/vnd.jupyter-codexmax.session+json';

/**
 * The newest of a notebook's stored records (its metadata's, those in `%%agent` outputs),
 * as the kernel picks it: the latest `updated`, then the most turns. Values that are not
 * records are left out.
 */
export function newestRecord(candidates: unknown[]): unknown {
  let best: { [key: string]: unknown } | null = null;
  for (const value of candidates) {
    if (!isObject(value) || typeof value.session_id !== 'string') {
      continue;
    }
    const updated = typeof value.updated === 'string' ? value.updated : '';
    const bestUpdated = best && typeof best.updated === 'string' ? best.updated : '';
    if (
      best === null ||
      updated > bestUpdated ||
      (updated === bestUpdated && count(value.turns) > count(best.turns))
    ) {
      best = value;
    }
  }
  return best;
}
