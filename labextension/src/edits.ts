/**
 * The agent's edits, applied to the notebook's shared model (the one JupyterLab shows,
 * and with jupyter-collaboration the one every collaborator shares).
 *
 * An edit (the ops of one `notebook.edit` request) is checked whole before anything
 * changes: an unknown cell, op or position is a `ProtocolError`; a cell the user changed
 * since the kernel last read it (its `base` differs) refuses the edit with `StaleEdit`.
 * Then it is applied as one undo step (one undo takes it back), by cell id: the
 * notebook is never replaced, cells the edit does not name are not touched, and a
 * changed source is patched in place (the text around the change, and the user's cursor
 * in it, stay).
 */

import type { ISharedCell, ISharedNotebook } from '@jupyter/ydoc';

import {
  CellType,
  EditOp,
  IInsertOp,
  JSONObject,
  JSONValue,
  ProtocolError
} from './protocol.js';

/** The edit names cells the user changed since the kernel read them: nothing changed. */
export class StaleEdit extends Error {
  constructor(readonly ids: string[]) {
    super(
      `the user changed ${ids.length === 1 ? 'cell' : 'cells'} ${ids.join(', ')} since ` +
        'the agent read the notebook: nothing was changed'
    );
    this.name = 'StaleEdit';
  }
}

interface IPlanned {
  ids: string[];
  types: Map<string, string>;
  sources: Map<string, string>;
}

/** Check every op against the notebook as it is (simulated in order); throws on the first
 * problem, or `StaleEdit` naming every stale cell. Changes nothing. */
export function checkOps(notebook: ISharedNotebook, ops: EditOp[]): void {
  const state: IPlanned = { ids: [], types: new Map(), sources: new Map() };
  for (const cell of notebook.cells) {
    state.ids.push(cell.id);
    state.types.set(cell.id, cell.cell_type);
    state.sources.set(cell.id, cell.getSource());
  }
  const stale = new Set<string>();
  ops.forEach((op, number) => {
    const where = `op ${number + 1} (${op.op})`;
    const known = (id: string): void => {
      if (!state.sources.has(id)) {
        throw new ProtocolError(`${where}: no cell has id ${JSON.stringify(id)}`);
      }
    };
    const base = (id: string, expected: string | undefined): void => {
      if (expected !== undefined && state.sources.get(id) !== expected) {
        stale.add(id);
      }
    };
    switch (op.op) {
      case 'insert':
        if (state.sources.has(op.id)) {
          throw new ProtocolError(
            `${where}: a cell already has id ${JSON.stringify(op.id)}`
          );
        }
        if (op.index > state.ids.length) {
          throw new ProtocolError(
            `${where}: index ${op.index} is past the end (${state.ids.length} cells)`
          );
        }
        state.ids.splice(op.index, 0, op.id);
        state.types.set(op.id, op.cell_type);
        state.sources.set(op.id, op.source);
        break;
      case 'set_source':
        known(op.id);
        base(op.id, op.base);
        state.sources.set(op.id, op.source);
        if (op.cell_type) {
          state.types.set(op.id, op.cell_type);
        }
        break;
      case 'delete':
        known(op.id);
        base(op.id, op.base);
        state.ids.splice(state.ids.indexOf(op.id), 1);
        state.sources.delete(op.id);
        break;
      case 'move':
        known(op.id);
        if (op.index >= state.ids.length) {
          throw new ProtocolError(
            `${where}: index ${op.index} is past the end (${state.ids.length} cells)`
          );
        }
        state.ids.splice(state.ids.indexOf(op.id), 1);
        state.ids.splice(op.index, 0, op.id);
        break;
      case 'set_outputs':
        known(op.id);
        if (state.types.get(op.id) !== 'code') {
          throw new ProtocolError(`${where}: cell ${op.id} is not a code cell`);
        }
        break;
      case 'set_metadata':
        break;
    }
  });
  if (stale.size) {
    throw new StaleEdit([...stale]);
  }
}

/** Whether an edit changes what the user wrote (sources, cells): then it is one step in
 * the notebook's undo history. Session records and summaries (metadata, outputs) are not. */
export function isUndoable(ops: EditOp[]): boolean {
  return ops.some(op => op.op !== 'set_metadata' && op.op !== 'set_outputs');
}

interface IUndoable {
  undoManager?: { stopCapturing(): void } | null;
}

function stopCapturing(target: unknown): void {
  (target as IUndoable).undoManager?.stopCapturing();
}

/**
 * Apply checked ops (`checkOps` first), in order, as one undo step. An edit of one cell's
 * source is that cell's change (Ctrl+Z in its editor takes it back, as JupyterLab keeps
 * undo per cell by default); any other edit is the notebook's (undo in command mode takes
 * it all back). Either way the agent's change is an undo step of its own, apart from the
 * user's typing before and after it.
 *
 * Each op is a transaction of its own (the notebook's list of cells is only brought up to
 * date between transactions); the undo manager gathers them into one step, as they come
 * together (within its capture time), with `stopCapturing` before and after.
 */
export function applyOps(notebook: ISharedNotebook, ops: EditOp[]): void {
  const undoable = isUndoable(ops);
  const single = singleCellSource(notebook, ops);
  const owner: { transact(f: () => void, undoable?: boolean): void } =
    single ?? notebook;
  stopCapturing(owner);
  try {
    for (const op of ops) {
      owner.transact(() => applyOp(notebook, op), undoable);
    }
  } finally {
    stopCapturing(owner);
  }
}

/** The cell whose source is all this edit changes (without changing its type), if so. */
function singleCellSource(
  notebook: ISharedNotebook,
  ops: EditOp[]
): ISharedCell | null {
  const ids = new Set<string>();
  for (const op of ops) {
    if (op.op !== 'set_source' || op.cell_type !== undefined) {
      return null;
    }
    ids.add(op.id);
  }
  if (ids.size !== 1) {
    return null;
  }
  const [id] = [...ids];
  return notebook.cells.find(cell => cell.id === id) ?? null;
}

function indexOf(notebook: ISharedNotebook, id: string): number {
  const index = notebook.cells.findIndex(cell => cell.id === id);
  if (index < 0) {
    throw new ProtocolError(`no cell has id ${JSON.stringify(id)}`);
  }
  return index;
}

function applyOp(notebook: ISharedNotebook, op: EditOp): void {
  switch (op.op) {
    case 'insert':
      notebook.insertCell(op.index, newCell(op));
      break;
    case 'set_source': {
      const index = indexOf(notebook, op.id);
      const cell = notebook.cells[index];
      if (op.cell_type && op.cell_type !== cell.cell_type) {
        changeType(notebook, index, op.cell_type, op.source);
      } else {
        patchSource(cell, op.source);
      }
      break;
    }
    case 'delete':
      notebook.deleteCell(indexOf(notebook, op.id));
      break;
    case 'move': {
      const from = indexOf(notebook, op.id);
      if (from !== op.index) {
        notebook.moveCell(from, op.index);
      }
      break;
    }
    case 'set_metadata':
      if (op.value === null) {
        notebook.deleteMetadata(op.key);
      } else {
        notebook.setMetadata(op.key, op.value);
      }
      break;
    case 'set_outputs': {
      const cell = notebook.cells[indexOf(notebook, op.id)];
      const code = cell as ISharedCell & {
        setOutputs?: (outputs: JSONObject[]) => void;
        execution_count?: number | null;
      };
      code.setOutputs?.(op.outputs);
      if (op.execution_count !== undefined) {
        code.execution_count = op.execution_count;
      }
      break;
    }
  }
}

function newCell(op: IInsertOp): Parameters<ISharedNotebook['insertCell']>[1] {
  const cell: { [key: string]: JSONValue | undefined } = {
    id: op.id,
    cell_type: op.cell_type,
    source: op.source,
    metadata: op.metadata ?? {}
  };
  if (op.cell_type === 'code') {
    cell.outputs = op.outputs ?? [];
    cell.execution_count = op.execution_count ?? null;
  } else if (op.attachments) {
    cell.attachments = op.attachments;
  }
  return cell as unknown as Parameters<ISharedNotebook['insertCell']>[1];
}

/** A cell of another type in the same place, with the same id and metadata. */
function changeType(
  notebook: ISharedNotebook,
  index: number,
  cellType: CellType,
  source: string
): void {
  const old = notebook.cells[index].toJSON() as unknown as JSONObject;
  const cell: JSONObject = {
    id: notebook.cells[index].id,
    cell_type: cellType,
    source,
    metadata: old.metadata ?? {}
  };
  if (cellType === 'code') {
    cell.outputs = [];
    cell.execution_count = null;
  } else if (old.attachments && cellType === 'markdown') {
    cell.attachments = old.attachments;
  }
  notebook.deleteCell(index);
  notebook.insertCell(
    index,
    cell as unknown as Parameters<ISharedNotebook['insertCell']>[1]
  );
}

/** Change only what differs (the common start and end stay), so the text around the
 * change, and a cursor in it, are left where they were. */
export function patchSource(cell: ISharedCell, source: string): void {
  const old = cell.getSource();
  if (old === source) {
    return;
  }
  const [start, oldEnd, newEnd] = changedRange(old, source);
  cell.updateSource(start, oldEnd, source.slice(start, newEnd));
}

/** The range that differs: `[start, end in old, end in new]` (UTF-16 units, as the
 * shared text counts them; a surrogate pair is never split). */
export function changedRange(old: string, next: string): [number, number, number] {
  let start = 0;
  const shortest = Math.min(old.length, next.length);
  while (start < shortest && old.charCodeAt(start) === next.charCodeAt(start)) {
    start++;
  }
  if (start > 0 && isHighSurrogate(old.charCodeAt(start - 1))) {
    start--;
  }
  let oldEnd = old.length;
  let newEnd = next.length;
  while (
    oldEnd > start &&
    newEnd > start &&
    old.charCodeAt(oldEnd - 1) === next.charCodeAt(newEnd - 1)
  ) {
    oldEnd--;
    newEnd--;
  }
  if (oldEnd < old.length && isLowSurrogate(old.charCodeAt(oldEnd))) {
    oldEnd++;
    newEnd++;
  }
  return [start, oldEnd, newEnd];
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** The notebook as `notebook.get` gives it: every cell with its id, sources as strings. */
export function notebookJSON(notebook: ISharedNotebook): {
  nbformat: number;
  nbformat_minor: number;
  metadata: JSONObject;
  cells: JSONObject[];
} {
  return {
    nbformat: notebook.nbformat,
    nbformat_minor: notebook.nbformat_minor,
    metadata: notebook.getMetadata() as unknown as JSONObject,
    cells: notebook.cells.map(cell => {
      const json = cell.toJSON() as unknown as JSONObject;
      json.id = cell.id;
      if (typeof json.source !== 'string') {
        json.source = cell.getSource();
      }
      return json;
    })
  };
}
