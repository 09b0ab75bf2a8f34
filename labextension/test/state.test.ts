// The toolbar item's state, from the agent's events.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { AgentState } from '../src/state.js';

test('idle, working, waiting for approval, and back', () => {
  const state = new AgentState();
  assert.equal(state.label, 'Agent: off');
  assert.ok(state.connected(true));
  assert.equal(state.label, 'Agent: idle');
  assert.ok(state.handle({ type: 'TurnStarted', turn: 1, message: 'go' }));
  assert.equal(state.phase, 'working');
  assert.ok(state.busy);
  state.handle({
    type: 'ApprovalRequested',
    request_id: 'r1',
    kind: 'run',
    summary: 's'
  });
  state.handle({
    type: 'ApprovalRequested',
    request_id: 'r2',
    kind: 'run',
    summary: 's'
  });
  assert.equal(state.label, 'Agent: waiting for approval');
  state.handle({ type: 'ApprovalResolved', request_id: 'r1', decision: 'approve' });
  assert.equal(state.phase, 'waiting', 'one still waits');
  state.handle({ type: 'ApprovalResolved', request_id: 'r2', decision: 'deny' });
  assert.equal(state.phase, 'working');
  assert.equal(state.handle({ type: 'TextDelta', text: 'x' }), false);
  state.handle({ type: 'TurnFinished', turn: 1, status: 'done' });
  assert.equal(state.phase, 'idle');
  assert.ok(!state.busy);
});

test('context left, from the usage the kernel reports', () => {
  const state = new AgentState();
  state.connected(true);
  assert.equal(state.contextLeft, null);
  state.handle({
    type: 'UsageUpdated',
    context_tokens: 27_200,
    context_window: 272_000
  });
  assert.equal(state.contextLeft, 90);
  assert.equal(state.label, 'Agent: idle · 90% context left');
  assert.match(state.title, /27,200 of 272,000 tokens of context used/);
  state.handle({ type: 'CompactionFinished', after: 2_720 });
  assert.equal(state.contextLeft, 99);
});

test('the bridge gone: off, nothing pending', () => {
  const state = new AgentState();
  state.connected(true);
  state.handle({ type: 'ApprovalRequested', request_id: 'r1' });
  state.connected(false, 'the kernel refused');
  assert.equal(state.phase, 'off');
  assert.equal(state.pending.size, 0);
  assert.equal(state.title, 'the kernel refused');
});
