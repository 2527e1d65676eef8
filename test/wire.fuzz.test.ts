// The differential fuzzer of the verify connections read from the socket (test/wire-fuzz.ts): a
// few thousand seeded cases against the wire path and node:http alone, over one store. The chaos
// tier runs more (test/chaos/wire.fuzz.chaos.test.ts). WIRE_FUZZ_SEED, WIRE_FUZZ_CASES and
// WIRE_FUZZ_CASE (one case, to reproduce a failure) override the defaults.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../src/keys/format.js';
import { createKey, startServer, world, type TestServer } from './harness.js';
import { differences, fuzzServer, type FuzzWorld } from './wire-fuzz.js';

export async function fuzzServers(): Promise<{ wire: TestServer; nodeHttp: TestServer; w: FuzzWorld; close(): Promise<void> }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-fuzz-'));
  const env = { KEYWARD_USAGE_FLUSH_MS: '60000', KEYWARD_SQLITE_SYNC: 'NORMAL' };
  const wire = await startServer({ listen: true, dataDir, env });
  const nodeHttp = await startServer({ listen: true, dataDir, env: { ...env, KEYWARD_VERIFY_WIRE: '0' } });
  const owner = await world(wire);
  const valid = (await createKey(wire, owner, { ratelimit: null, ownerRatelimit: null })).key;
  const root = await wire.request('POST', `/v1/workspaces/${owner.workspaceId}/root-keys`, { token: owner.token, body: { name: 'verifier', permissions: ['keys:verify'] } });
  if (root.status !== 201) throw new Error(`root key: ${root.status} ${root.text}`);
  return {
    wire,
    nodeHttp,
    w: { appId: owner.appId, valid, unknown: generateKey('acme', 'live').plaintext, root: root.body.key },
    async close() {
      await wire.close();
      await nodeHttp.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

describe('differential fuzzing: the wire path answers every byte as node:http does', () => {
  let servers: Awaited<ReturnType<typeof fuzzServers>>;
  beforeAll(async () => {
    servers = await fuzzServers();
  });
  afterAll(async () => {
    await servers.close();
  });

  it('same answers and the same connection fate, case after case', async () => {
    const seed = Number(process.env.WIRE_FUZZ_SEED ?? 31_2026);
    const only = process.env.WIRE_FUZZ_CASE === undefined ? undefined : Number(process.env.WIRE_FUZZ_CASE);
    const found = await differences({ wire: fuzzServer(servers.wire.url, servers.wire.app.server), nodeHttp: fuzzServer(servers.nodeHttp.url, servers.nodeHttp.app.server) }, servers.w, { seed, cases: Number(process.env.WIRE_FUZZ_CASES ?? 2000), only });
    expect(found.join('\n\n'), `seed ${seed}`).toBe('');
  }, 300_000);
});
