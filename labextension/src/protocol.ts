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
