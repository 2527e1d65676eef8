// Overrides held in memory: the most specific wins, a change is read again, a load that a change
// overtook is not kept, and a store that cannot be read leaves verify deciding with what was held.
import { describe, expect, it } from 'vitest';
import { OverrideCache, WorkspaceOverrides } from '../../src/ratelimit/overrides.js';
import type { RatelimitOverridesTable } from '../../src/store/schema.js';

const row = (kind: 'limit' | 'namespace', name: string, identifier: string, limit: number): RatelimitOverridesTable =>
  ({ id: `rlo_${identifier}`, workspace_id: 'ws_1', kind, name, identifier, limit, duration_ms: 60_000, created_at: 0, updated_at: 0 });

describe('overrides', () => {
  it('the most specific wins: exact, then the longest prefix; kinds and names apart', () => {
    const o = new WorkspaceOverrides([
      row('limit', 'calls', '*', 1), row('limit', 'calls', 'cust_*', 2), row('limit', 'calls', 'cust_4*', 3), row('limit', 'calls', 'cust_42', 4),
      row('namespace', 'calls', 'cust_42', 5), row('limit', 'other', 'cust_42', 6),
    ]);
    expect(o.resolve('limit', 'calls', 'cust_42')?.limit).toBe(4);
    expect(o.resolve('limit', 'calls', 'cust_41')?.limit).toBe(3);
    expect(o.resolve('limit', 'calls', 'cust_1')?.limit).toBe(2);
    expect(o.resolve('limit', 'calls', 'acct_1')?.limit).toBe(1);
    expect(o.resolve('namespace', 'calls', 'cust_42')?.limit).toBe(5);
    expect(o.resolve('namespace', 'calls', 'cust_41')).toBeUndefined();
    expect(o.resolve('limit', 'unknown', 'cust_42')).toBeUndefined();
  });

  it('reads once, reads again after a change, and keeps no load that a change overtook', async () => {
    let rows = [row('limit', 'calls', 'a', 1)];
    let reads = 0;
    let gate: Promise<void> = Promise.resolve();
    const cache = new OverrideCache(async () => {
      reads++;
      const answer = rows;
      await gate;
      return answer;
    });
    expect((await cache.get('ws_1')).resolve('limit', 'calls', 'a')?.limit).toBe(1);
    expect(cache.get('ws_1')).not.toBeInstanceOf(Promise);
    expect(reads).toBe(1);
    rows = [row('limit', 'calls', 'a', 2)];
    cache.invalidate('ws_1');
    expect((await cache.get('ws_1')).resolve('limit', 'calls', 'a')?.limit).toBe(2);
    // A load under way when a change lands answers its caller, but is not kept.
    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    cache.invalidate('ws_1');
    const pending = cache.get('ws_1');
    rows = [row('limit', 'calls', 'a', 3)];
    cache.invalidate('ws_1');
    open();
    await pending;
    gate = Promise.resolve();
    expect((await cache.get('ws_1')).resolve('limit', 'calls', 'a')?.limit).toBe(3);
  });

  it('while the store cannot be read: the overrides last held, else none; nothing kept', async () => {
    let down = false;
    const cache = new OverrideCache(async () => {
      if (down) throw new Error('store unavailable');
      return [row('limit', 'calls', 'a', 7)];
    });
    expect((await cache.get('ws_1')).resolve('limit', 'calls', 'a')?.limit).toBe(7);
    down = true;
    cache.invalidate('ws_1');
    expect((await cache.get('ws_1')).resolve('limit', 'calls', 'a')?.limit).toBe(7);
    expect((await cache.get('ws_2')).empty).toBe(true);
    down = false;
    expect(cache.get('ws_1')).toBeInstanceOf(Promise);
    expect((await cache.get('ws_1')).resolve('limit', 'calls', 'a')?.limit).toBe(7);
  });
});
