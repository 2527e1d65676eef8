// The differential fuzzer of the verify connections read from the socket (test/support/wire-fuzz.ts), at
// length: 10,000 cases by default (WIRE_FUZZ_CASES), on another seed than `npm test` runs
// (WIRE_FUZZ_SEED to choose; WIRE_FUZZ_CASE to run one case again).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { differences, fuzzRun, fuzzServers } from '../support/wire-fuzz.js';

describe('differential fuzzing at length: the wire path answers every byte as node:http does', () => {
  let servers: Awaited<ReturnType<typeof fuzzServers>>;
  beforeAll(async () => {
    servers = await fuzzServers();
  });
  afterAll(async () => {
    await servers.close();
  });

  it('same answers and the same connection fate over many more cases', async () => {
    const found = await differences(servers.targets, servers.w, fuzzRun(2026, 10_000));
    expect(found.join('\n\n')).toBe('');
  }, 3_600_000);
});
