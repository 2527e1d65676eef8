// The verify engine: the one object the hot path reads, built once in deps.ts. It holds what a
// verdict needs (the store's verify reads, the key cache, the limiter, the usage-cap slices, the
// usage recorder, the replay guard, the clock) and the policy of this node, and answers
// `verify(input, authorization)`: the scope (an appId, or a verify root key), verifyKey, and the
// verdict's metric. Every transport of POST /v1/keys/verify reaches it through one answerer
// (./answer.ts); forward auth calls `verify` with the forwarded request.
import { invalid } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { ipv4ToInt, parseClientIp } from '../lib/ip.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import type { ReplayGuard } from '../shared/replay.js';
import type { KeyCache } from './cache.js';
import type { ImportedKeys } from './imported.js';
import { resolveScope, type RootKeyCache, type VerifyScope } from './scope.js';
import type { VerifyCode } from './steps.js';
import type { VerifyStore } from './store.js';
import type { VerifyPolicy } from './checks.js';
import { verifyKey, type VerifyDeps, type VerifyInput, type VerifyResult } from './verify.js';

/** A verify call: its body, and the request's Authorization header (a verify root key, if any). */
export type Verifier = (input: VerifyInput, authorization: string | undefined) => VerifyResult | Promise<VerifyResult>;

export interface VerifyEngineParts {
  store: VerifyStore;
  cache: KeyCache;
  roots: RootKeyCache;
  limiter: RateLimiter;
  /** Named limits (keys' and identities'): reserved, then kept or handed back. */
  buckets: VerifyDeps['buckets'];
  /** Rate-limit overrides of a workspace, in memory once read. */
  overrides: VerifyDeps['overrides'];
  credits: VerifyDeps['credits'];
  /** Where verdicts are counted for usage analytics and last use (src/usage/recorder.ts). */
  usage: { record(keyId: string, code: VerifyCode, now: number, valid: boolean): void };
  replay: ReplayGuard;
  imported: VerifyDeps['imported'];
  clock: Clock;
  /** The node's verify policy (Config['verifyPolicy']). */
  policy: VerifyPolicy;
  /** Counts each verdict for /metrics. */
  countVerdict: (code: VerifyCode) => void;
}

export class VerifyEngine implements VerifyDeps {
  readonly cache: KeyCache;
  /** Replaceable, as a seam: tests wrap it to count the store reads verify makes. */
  load: VerifyDeps['load'];
  readonly loadIntegration: VerifyDeps['loadIntegration'];
  readonly limiter: RateLimiter;
  readonly buckets: VerifyDeps['buckets'];
  readonly overrides: VerifyDeps['overrides'];
  readonly credits: VerifyDeps['credits'];
  readonly imported: Pick<ImportedKeys, 'has' | 'size'>;
  readonly jwtMaxAgeSec: number;
  readonly jwtLeewaySec: number;
  readonly policy: VerifyPolicy;
  private readonly parts: VerifyEngineParts;

  constructor(parts: VerifyEngineParts) {
    this.parts = parts;
    this.cache = parts.cache;
    this.load = parts.store.load;
    this.loadIntegration = parts.store.loadIntegration;
    this.limiter = parts.limiter;
    this.buckets = parts.buckets;
    this.overrides = parts.overrides;
    this.credits = parts.credits;
    this.imported = parts.imported;
    this.jwtMaxAgeSec = parts.policy.jwtMaxAgeSec;
    this.jwtLeewaySec = parts.policy.jwtLeewaySec;
    this.policy = parts.policy;
  }

  now(): number {
    return this.parts.clock.now();
  }

  record(keyId: string, code: VerifyCode, now: number, valid: boolean): void {
    this.parts.usage.record(keyId, code, now, valid);
  }

  firstUse(id: string, ttlMs: number, now: number): Promise<boolean> {
    return this.parts.replay.firstSeen(id, ttlMs, now);
  }

  /**
   * The scope (appId or a verify root key), verifyKey, and the per-verdict metric. A missing or bad
   * scope throws the AppError the transport answers with. Synchronous for a cached key under the
   * local limiter; a promise when the store or Redis is asked.
   */
  readonly verify: Verifier = (input, authorization) => {
    // A caller address that is not an address is the integrator's bug: say so, rather than let a
    // key without an allowlist pass and one with an allowlist fail for a reason nobody sees.
    if (input.ip !== undefined && ipv4ToInt(input.ip) === null && parseClientIp(input.ip) === null) throw invalid('body/ip', 'is not an IPv4 or IPv6 address');
    const scope = resolveScope(this.parts.roots, input.appId, authorization, this.now());
    return scope instanceof Promise ? scope.then((s) => this.run(input, s)) : this.run(input, scope);
  };

  private run(input: VerifyInput, scope: VerifyScope): VerifyResult | Promise<VerifyResult> {
    const result = verifyKey(this, input, scope);
    return result instanceof Promise ? result.then(this.counted) : this.counted(result);
  }

  private readonly counted = (result: VerifyResult): VerifyResult => {
    this.parts.countVerdict(result.code);
    return result;
  };
}
