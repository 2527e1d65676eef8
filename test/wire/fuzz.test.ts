// The differential fuzzer of the verify connections read from the socket (test/support/wire-fuzz.ts): a
// few thousand seeded cases against the wire path and node:http alone, over one store. The chaos
// tier runs more (test/chaos/wire.fuzz.chaos.test.ts). WIRE_FUZZ_SEED, WIRE_FUZZ_CASES and
// WIRE_FUZZ_CASE (one case, to reproduce a failure) override the defaults.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { differences, fuzzRun, fuzzServers } from '../support/wire-fuzz.js';

describe('differential fuzzing: the wire path answers every byte as node:http does', () => {
  let servers: Awaited<ReturnType<typeof fuzzServers>>;
  beforeAll(async () => {
    servers = await fuzzServers();
  });
  afterAll(async () => {
    await servers.close();
  });

  it('same answers and the same connection fate, case after case', async () => {
    const found = await differences(servers.targets, servers.w, fuzzRun(31_2026, 2000));
    expect(found.join('\n\n')).toBe('');
  }, 300_000);
});
