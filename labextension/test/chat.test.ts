// The sidebar's transcript, its checks and its one-line reasons (chat.ts, protocol.ts, load.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { formatTokens, Transcript } from '../src/chat.js';
import { whyNotLoaded } from '../src/load.js';
import {
  AGENT_METHODS,
  newestRecord,
  parseEvent,
  parseRecord,
  ProtocolError,
  turnParams
} from '../src/protocol.js';

test('a streamed answer is one row, drawn again; a tool call is one row', () => {
  const t = new Transcript();
  assert.deepEqual(t.handle({ type: 'TurnStarted', turn: 1, message: 'go' }), [
    { index: 0, added: true }
  ]);
  assert.ok(t.busy);
  assert.deepEqual(t.handle({ type: 'TextDelta', text: 'Hel' }), [
    { index: 1, added: true }
  ]);
  assert.deepEqual(t.handle({ type: 'TextDelta', text: 'lo' }), [
    { index: 1, added: false }
  ]);
  assert.deepEqual(t.handle({ type: 'AssistantMessage', text: 'Hello' }), []);
  t.handle({
    type: 'ToolCallStarted',
    call_id: 'c1',
    name: 'run_cells',
    arguments: { cell_ids: ['a'] },
    summary: 'run a'
  });
  t.handle({
    type: 'ToolCallFinished',
    call_id: 'c1',
    name: 'run_cells',
    ok: false,
    summary: 'a failed',
    duration: 0.5,
    output: 'NameError'
  });
  t.handle({ type: 'StepStarted', turn: 1, step: 2 });
  t.handle({ type: 'TextDelta', text: 'After' });
  const kinds = t.rows.map(r => r.kind);
  assert.deepEqual(kinds, ['user', 'answer', 'tool', 'answer']);
  const tool = t.rows[2];
  assert.ok(
    tool.kind === 'tool' && tool.state === 'failed' && tool.output === 'NameError'
  );
  assert.ok(tool.kind === 'tool' && tool.args.includes('cell_ids'));
  t.handle({ type: 'TurnFinished', turn: 1, status: 'done', final_text: 'x' });
  assert.equal(t.busy, false);
  assert.equal(t.rows.length, 4, 'a finished turn adds no row');
});

test('approvals, stop, errors, the plan and the meter', () => {
  const t = new Transcript();
  t.handle({ type: 'TurnStarted', turn: 3, message: 'go' });
  t.handle({
    type: 'PlanUpdated',
    steps: [{ step: 'a', status: 'pending' }],
    explanation: ''
  });
  t.handle({
    type: 'PlanUpdated',
    steps: [{ step: 'a', status: 'completed' }],
    explanation: ''
  });
  assert.equal(
    t.rows.filter(r => r.kind === 'plan').length,
    1,
    'one plan row, updated'
  );
  t.handle({
    type: 'ApprovalRequested',
    request_id: 'r1',
    kind: 'run',
    summary: 'rm',
    detail: ''
  });
  t.handle({
    type: 'ApprovalResolved',
    request_id: 'r1',
    decision: 'deny',
    reason: ''
  });
  const approval = t.rows.find(r => r.kind === 'approval');
  assert.ok(approval?.kind === 'approval' && approval.decision === 'deny');
  t.handle({
    type: 'UsageUpdated',
    total_input_tokens: 5230,
    total_output_tokens: 77,
    context_tokens: 5230,
    context_window: 272000,
    cost_usd: 0.0123,
    model: 'gpt'
  });
  assert.equal(t.contextUsed, 2);
  assert.equal(
    t.meterText,
    'context 5.23k of 272k (2%), 266.8k left · 0 compactions · 5.23k in, 77 out · $0.0123'
  );
  t.handle({
    type: 'ErrorEvent',
    message: 'the server refused the credentials',
    fatal: true
  });
  t.handle({
    type: 'TurnFinished',
    turn: 3,
    status: 'failed',
    final_text: '',
    error: 'x'
  });
  const errors = t.rows.filter(r => r.kind === 'notice' && r.level === 'error');
  assert.equal(errors.length, 1, 'the error is said once');
  assert.equal(t.rows[t.rows.length - 1].kind, 'notice', 'the error line, no more');
  t.handle({ type: 'TurnStarted', turn: 4, message: 'again' });
  t.handle({ type: 'TurnFinished', turn: 4, status: 'stopped', final_text: '' });
  assert.equal(t.rows[t.rows.length - 1].kind, 'end');
  // Stopped from the sidebar: said when the kernel answers, once.
  t.handle({ type: 'TurnStarted', turn: 5, message: 'long' });
  t.handle({ type: 'TextDelta', text: 'par' });
  assert.equal(t.stopped().length, 1);
  assert.equal(t.stopped().length, 0);
  t.handle({ type: 'TurnFinished', turn: 5, status: 'stopped', final_text: '' });
  assert.equal(t.rows.filter(r => r.kind === 'end').length, 2, 'one per stopped turn');
  assert.equal(t.stopped().length, 0, 'nothing runs');
  t.handle({
    type: 'CompactionStarted',
    reason: 'threshold',
    tokens: 230000,
    limit: 244800
  });
  t.handle({
    type: 'CompactionFinished',
    method: 'remote',
    before: 230000,
    after: 12000,
    attempts: 1,
    compactions: 1
  });
  const compactions = t.rows.filter(
    r => r.kind === 'notice' && r.level === 'compaction'
  );
  assert.deepEqual(
    compactions.map(r => (r.kind === 'notice' ? r.text : '')),
    [
      'compacting the context (threshold: 230k of 244.8k tokens)',
      'context compacted: 230k → 12k tokens (remote)'
    ]
  );
  assert.equal(t.meter.compactions, 1);
  assert.equal(t.meter.contextTokens, 12000);
  assert.equal(formatTokens(950), '950');
  assert.equal(formatTokens(1_200_000), '1.2M');
});

test('the stored session: messages, summary, ledger', () => {
  const view = parseRecord({
    session_id: 's1',
    turns: 5,
    compactions: 1,
    context_tokens: 100,
    usage: { input_tokens: 10, output_tokens: 2, cost_usd: 0.5 },
    summary: {
      type: 'message',
      role: 'user',
      content: [{ type: 'input_text', text: 'earlier' }]
    },
    messages: [
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'q' }] },
      {
        type: 'message',
        role: 'assistant',
        content: [{ type: 'output_text', text: 'a' }]
      }
    ],
    ledger: { cells_edited: ['c1'], plan: [{ step: 's', status: 'completed' }] }
  });
  assert.ok(view);
  const t = new Transcript();
  t.load(view);
  assert.deepEqual(
    t.rows.map(r => r.kind),
    ['summary', 'user', 'answer', 'ledger', 'plan']
  );
  const user = t.rows[1];
  assert.ok(user.kind === 'user' && user.turn === 5, 'numbered as the last turns');
  assert.equal(parseRecord(null), null);
  assert.throws(() => parseRecord({ messages: [] }), ProtocolError);
  assert.throws(() => parseRecord({ session_id: 's', messages: 3 }), ProtocolError);
});

test('events and turn params are checked as docs/bridge.md says', () => {
  assert.equal(parseEvent({ type: 'SomethingLater', x: 1 }), null);
  assert.throws(
    () => parseEvent({ type: 'TextDelta', text: 3 }),
    /event TextDelta: text must be string, not a number/
  );
  assert.throws(
    () => parseEvent({ type: 'PlanUpdated', steps: [3], explanation: '' }),
    ProtocolError
  );
  assert.deepEqual(turnParams('hi', { effort: 'high', model: ' m ', approval: '' }), {
    message: 'hi',
    effort: 'high',
    model: 'm'
  });
  assert.throws(() => turnParams('  '), /message must be a non-empty string/);
  assert.throws(() => turnParams('hi', { effort: 'max' }), /effort must be one of/);
  assert.throws(
    () => turnParams('hi', { approval: 'yolo' }),
    /approval must be one of/
  );
  assert.deepEqual(
    [...AGENT_METHODS],
    ['agent.session', 'agent.turn', 'agent.stop', 'agent.approve', 'agent.status']
  );
});

test('why the kernel cannot load the agent, and how to fix it', () => {
  assert.equal(whyNotLoaded({ language: 'python', kernel: 'python3' }), null);
  assert.match(
    whyNotLoaded({ language: 'R', kernel: 'ir' }) ?? '',
    /runs R, not Python.*Change Kernel/
  );
  assert.match(
    whyNotLoaded({
      language: 'python',
      kernel: 'py',
      ename: 'ModuleNotFoundError',
      evalue: "No module named 'jupyter_codexmax'"
    }) ?? '',
    /\(py\) has no jupyter-codexmax: install it there \(in a cell: %pip install/
  );
  assert.equal(
    whyNotLoaded({
      language: 'python',
      kernel: 'py',
      ename: 'OSError',
      evalue: 'disk\nfull'
    }),
    'loading jupyter-codexmax in the kernel (py) failed: OSError: disk'
  );
});

test("the newest of a notebook's stored records", () => {
  const old = { session_id: 'a', updated: '2026-11-01T10:00:00+00:00', turns: 9 };
  const newer = { session_id: 'b', updated: '2026-11-02T10:00:00+00:00', turns: 1 };
  const more = { session_id: 'c', updated: '2026-11-02T10:00:00+00:00', turns: 2 };
  assert.equal(newestRecord([undefined, old, newer, 'junk', more]), more);
  assert.equal(newestRecord([old]), old);
  assert.equal(newestRecord([undefined, null, 3]), null);
});
