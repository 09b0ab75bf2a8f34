// The bridge's messages as docs/bridge.md writes them: checked, malformed ones refused.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import {
  parseMessage,
  parseRun,
  PROTOCOL,
  ProtocolError,
  TARGET
} from '../src/protocol.js';

test('the target and version are the ones docs/bridge.md gives', () => {
  const doc = readFileSync(new URL('../../../docs/bridge.md', import.meta.url), 'utf8');
  assert.match(
    doc,
    new RegExp(`Target name: \\*\\*\`${TARGET.replace('.', '\\.')}\`\\*\\*`)
  );
  assert.match(doc, new RegExp(`Protocol version:\\s+\\*\\*${PROTOCOL}\\*\\*`));
});

test('every method and op in docs/bridge.md is one this extension knows', () => {
  const doc = readFileSync(new URL('../../../docs/bridge.md', import.meta.url), 'utf8');
  const methods = [...doc.matchAll(/^\| `(notebook\.[a-z]+)` \|/gm)].map(m => m[1]);
  assert.deepEqual(methods.sort(), [
    'notebook.edit',
    'notebook.get',
    'notebook.run',
    'notebook.save'
  ]);
  const ops = [...doc.matchAll(/^\| `([a-z_]+)` \| `?[a-z]/gm)].map(m => m[1]);
  assert.deepEqual(ops.sort(), [
    'delete',
    'insert',
    'move',
    'set_metadata',
    'set_outputs',
    'set_source'
  ]);
});

test('messages are checked', () => {
  assert.deepEqual(parseMessage({ type: 'hello', protocol: 2, kernel: 'k' }), {
    type: 'hello',
    protocol: 2,
    kernel: 'k'
  });
  assert.deepEqual(
    parseMessage({ type: 'request', id: 'k1', method: 'notebook.get' }),
    {
      type: 'request',
      id: 'k1',
      method: 'notebook.get',
      params: {}
    }
  );
  assert.equal(
    parseMessage({ type: 'later-notification' }),
    null,
    'unknown notifications are ignored'
  );
  const bad: [unknown, RegExp][] = [
    ['{"type": "request"', /must be a JSON object, not a string/],
    [[1, 2], /not a list/],
    [null, /not null/],
    [{ id: 'k1' }, /needs a type/],
    [{ type: 'request', id: '', method: 'x' }, /id must be a non-empty string/],
    [{ type: 'request', id: 'k1', method: 7 }, /method must be a string/],
    [
      { type: 'request', id: 'k1', method: 'x', params: [1] },
      /params must be an object/
    ],
    [{ type: 'event', event: 'TurnStarted' }, /event must be an object with a type/]
  ];
  for (const [data, message] of bad) {
    assert.throws(
      () => parseMessage(data),
      (error: unknown) => error instanceof ProtocolError && message.test(error.message)
    );
  }
});

test('run params are checked', () => {
  assert.deepEqual(parseRun({ ids: ['a'], timeout: 5 }), { ids: ['a'], timeout: 5 });
  assert.throws(() => parseRun({ ids: [] }), /non-empty list of cell ids/);
  assert.throws(() => parseRun({ ids: ['a'], timeout: -1 }), /above 0/);
});

test('the extension, its plugin and the Python package have one version', () => {
  const pkg = JSON.parse(
    readFileSync(new URL('../../package.json', import.meta.url), 'utf8')
  ) as { version: string };
  const py = readFileSync(
    new URL('../../../jupyter_codexmax/_version.py', import.meta.url),
    'utf8'
  );
  assert.match(py, new RegExp(`__version__ = "${pkg.version.replace(/\./g, '\\.')}"`));
  const index = readFileSync(new URL('../../src/index.ts', import.meta.url), 'utf8');
  assert.ok(index.includes(`export const VERSION = '${pkg.version}';`));
});
