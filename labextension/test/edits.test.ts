// The agent's edits against a real shared notebook model (@jupyter/ydoc's YNotebook, the
// one JupyterLab uses), in node: checked whole, applied as one undo step, by cell id.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { YNotebook } from '@jupyter/ydoc';

import {
  applyOps,
  changedRange,
  checkOps,
  notebookJSON,
  StaleEdit
} from '../src/edits.js';
import { EditOp, parseOps, ProtocolError } from '../src/protocol.js';

const made: YNotebook[] = [];
after(() => made.forEach(nb => nb.dispose()));

function notebook(disableDocumentWideUndoRedo = true): YNotebook {
  const nb = YNotebook.create({
    disableDocumentWideUndoRedo,
    data: {
      cells: [
        {
          id: 'a',
          cell_type: 'code',
          source: 'x = 21',
          metadata: {},
          outputs: [],
          execution_count: null
        },
        {
          id: 'b',
          cell_type: 'markdown',
          source: '# Title',
          metadata: { tags: ['t'] }
        },
        {
          id: 'c',
          cell_type: 'code',
          source: 'print(x)',
          metadata: {},
          outputs: [],
          execution_count: 3
        }
      ],
      metadata: { kernelspec: { name: 'python3', display_name: 'Python 3' } }
    }
  });
  nb.undoManager.clear();
  nb.cells.forEach(cell =>
    (cell as unknown as { undoManager: { clear(): void } | null }).undoManager?.clear()
  );
  made.push(nb);
  return nb;
}

function edit(nb: YNotebook, ops: unknown[]): void {
  const parsed = parseOps({ ops } as never);
  checkOps(nb, parsed);
  applyOps(nb, parsed);
}

const sources = (nb: YNotebook) => nb.cells.map(c => `${c.id}:${c.getSource()}`);

test('one cell edited: only that cell changes, and its own undo takes it back', () => {
  const nb = notebook();
  const before = nb.cells.map(c => c);
  edit(nb, [{ op: 'set_source', id: 'a', source: 'x = 42', base: 'x = 21' }]);
  assert.deepEqual(sources(nb), ['a:x = 42', 'b:# Title', 'c:print(x)']);
  assert.ok(
    nb.cells.every((c, i) => c === before[i]),
    'the cells are the same objects'
  );
  assert.ok(nb.cells[0].undo());
  assert.equal(nb.cells[0].getSource(), 'x = 21');
});

test('an edit of several cells is one undo step of the notebook', () => {
  const nb = notebook();
  edit(nb, [
    { op: 'set_source', id: 'a', source: 'x = 42', base: 'x = 21' },
    { op: 'insert', index: 1, id: 'n', cell_type: 'code', source: 'y = x' },
    { op: 'move', id: 'c', index: 0 },
    { op: 'delete', id: 'b', base: '# Title' }
  ]);
  assert.deepEqual(sources(nb), ['c:print(x)', 'a:x = 42', 'n:y = x']);
  assert.equal(nb.undoManager.undoStack.length, 1);
  nb.undo();
  assert.deepEqual(sources(nb), ['a:x = 21', 'b:# Title', 'c:print(x)']);
  assert.deepEqual(nb.cells[1].getMetadata(), { tags: ['t'] });
});

test('with document-wide undo, a one-cell edit is one step too', () => {
  const nb = notebook(false);
  edit(nb, [{ op: 'set_source', id: 'a', source: 'x = 42' }]);
  assert.ok(nb.undo());
  assert.equal(nb.cells[0].getSource(), 'x = 21');
});

test('a cell the user changed since the read refuses the whole edit', () => {
  const nb = notebook();
  nb.cells[2].setSource('print(x)  # mine');
  const ops = parseOps({
    ops: [
      { op: 'set_source', id: 'a', source: 'x = 42', base: 'x = 21' },
      { op: 'set_source', id: 'c', source: 'print(x * 2)', base: 'print(x)' }
    ]
  });
  assert.throws(
    () => checkOps(nb, ops),
    (error: unknown) => {
      assert.ok(error instanceof StaleEdit);
      assert.deepEqual(error.ids, ['c']);
      assert.match(
        error.message,
        /the user changed cell c since the agent read the notebook/
      );
      return true;
    }
  );
  assert.deepEqual(sources(nb), ['a:x = 21', 'b:# Title', 'c:print(x)  # mine']);
});

test('bases follow the edit: a cell edited twice in one edit is not stale', () => {
  const nb = notebook();
  edit(nb, [
    { op: 'set_source', id: 'a', source: 'x = 1', base: 'x = 21' },
    { op: 'set_source', id: 'a', source: 'x = 2', base: 'x = 1' }
  ]);
  assert.equal(nb.cells[0].getSource(), 'x = 2');
});

test('unknown cells, ops and positions are refused before anything changes', () => {
  const nb = notebook();
  const cases: [unknown[], RegExp][] = [
    [
      [
        { op: 'set_source', id: 'a', source: 'x = 0' },
        { op: 'delete', id: 'zz' }
      ],
      /op 2 \(delete\): no cell has id "zz"/
    ],
    [
      [{ op: 'insert', index: 9, id: 'n', cell_type: 'code', source: '' }],
      /past the end/
    ],
    [
      [{ op: 'insert', index: 0, id: 'a', cell_type: 'code', source: '' }],
      /already has id "a"/
    ],
    [[{ op: 'set_outputs', id: 'b', outputs: [] }], /not a code cell/],
    [[{ op: 'move', id: 'a', index: 3 }], /past the end/]
  ];
  for (const [ops, message] of cases) {
    assert.throws(
      () => edit(nb, ops),
      (error: unknown) => {
        assert.ok(error instanceof ProtocolError, String(error));
        assert.match(error.message, message);
        return true;
      }
    );
  }
  assert.deepEqual(sources(nb), ['a:x = 21', 'b:# Title', 'c:print(x)']);
  assert.equal(nb.undoManager.undoStack.length, 0);
});

test('malformed ops are refused with one line', () => {
  const cases: [unknown, RegExp][] = [
    [{}, /ops must be a non-empty list/],
    [{ ops: [] }, /ops must be a non-empty list/],
    [{ ops: ['x'] }, /op 1: must be an object, not a string/],
    [{ ops: [{ op: 'fly', id: 'a' }] }, /op 1: unknown op "fly"/],
    [{ ops: [{ op: 'set_source', id: 'a' }] }, /op 1: source must be a string/],
    [
      { ops: [{ op: 'insert', index: -1, id: 'n', cell_type: 'code', source: '' }] },
      /index must be a position/
    ],
    [
      { ops: [{ op: 'insert', index: 0, id: 'n', cell_type: 'sql', source: '' }] },
      /cell_type must be code, markdown or raw/
    ],
    [{ ops: [{ op: 'set_metadata', key: 'k' }] }, /needs a value/]
  ];
  for (const [params, message] of cases) {
    assert.throws(() => parseOps(params as never), message);
  }
});

test('the type changes in place, keeping id and metadata', () => {
  const nb = notebook();
  edit(nb, [
    {
      op: 'set_source',
      id: 'b',
      source: 'print(1)',
      cell_type: 'code',
      base: '# Title'
    }
  ]);
  const cell = nb.cells[1];
  assert.equal(cell.id, 'b');
  assert.equal(cell.cell_type, 'code');
  assert.deepEqual(cell.getMetadata(), { tags: ['t'] });
});

test('metadata and outputs change without an undo step', () => {
  const nb = notebook();
  const output = { output_type: 'stream', name: 'stdout', text: 'hi\n' };
  edit(nb, [
    { op: 'set_metadata', key: 'codexmax', value: { turns: 1 } },
    { op: 'set_outputs', id: 'c', outputs: [output] }
  ]);
  assert.deepEqual(nb.getMetadata('codexmax' as never), { turns: 1 });
  assert.deepEqual(
    (nb.cells[2].toJSON() as unknown as { outputs: unknown[] }).outputs,
    [output]
  );
  assert.equal(nb.undoManager.undoStack.length, 0);
  edit(nb, [{ op: 'set_metadata', key: 'codexmax', value: null }]);
  assert.equal(nb.getMetadata('codexmax' as never), undefined);
});

test('a deleted cell comes back with its outputs and metadata (undo of a turn)', () => {
  const nb = notebook();
  const output = {
    output_type: 'execute_result',
    data: { 'text/plain': '3' },
    metadata: {},
    execution_count: 3
  };
  edit(nb, [{ op: 'delete', id: 'c' }]);
  edit(nb, [
    {
      op: 'insert',
      index: 2,
      id: 'c',
      cell_type: 'code',
      source: 'print(x)',
      metadata: { m: 1 },
      outputs: [output],
      execution_count: 3
    }
  ]);
  const json = nb.cells[2].toJSON() as unknown as Record<string, unknown>;
  assert.deepEqual(
    [json.id, json.execution_count, json.metadata, json.outputs],
    ['c', 3, { m: 1 }, [output]]
  );
});

test('a changed source is patched where it changed (the rest of the text stays)', () => {
  assert.deepEqual(changedRange('x = 21\nprint(x)', 'x = 42\nprint(x)'), [4, 6, 6]);
  assert.deepEqual(changedRange('abc', 'abc'), [3, 3, 3]);
  assert.deepEqual(changedRange('', 'new'), [0, 0, 3]);
  // Never between the two halves of a surrogate pair.
  const [start] = changedRange('a\u{1F600}', 'a\u{1F601}');
  assert.equal(start, 1);
  const nb = notebook();
  const cell = nb.cells[2];
  const seen: unknown[] = [];
  cell.changed.connect((_, change) => seen.push(change.sourceChange));
  edit(nb, [{ op: 'set_source', id: 'c', source: 'print(x * 2)' }]);
  assert.equal(cell.getSource(), 'print(x * 2)');
  assert.deepEqual(seen, [[{ retain: 7 }, { insert: ' * 2' }]]);
});

test('notebook.get gives every cell its id and a string source', () => {
  const nb = notebook();
  const json = notebookJSON(nb);
  assert.deepEqual(
    json.cells.map(c => [c.id, c.source]),
    [
      ['a', 'x = 21'],
      ['b', '# Title'],
      ['c', 'print(x)']
    ]
  );
  assert.equal(json.nbformat, 4);
  assert.deepEqual(json.metadata.kernelspec, {
    name: 'python3',
    display_name: 'Python 3'
  });
});

test('an edit by the user right before the agent is not merged into its undo step', () => {
  const nb = notebook();
  const cell = nb.cells[0];
  cell.updateSource(6, 6, '  # mine');
  edit(nb, [
    { op: 'set_source', id: 'a', source: 'x = 42  # mine', base: 'x = 21  # mine' }
  ]);
  cell.undo();
  assert.equal(cell.getSource(), 'x = 21  # mine', 'one undo: the agent edit only');
});

const _typecheck: EditOp[] = [];
void _typecheck;
