// Time as a dependency, so decisions take `now` and tests move a clock instead of sleeping; and the
// clock of a shared service (the store, Redis), for what every node must agree on.
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export class ManualClock implements Clock {
  constructor(private t: number = Date.UTC(2026, 0, 15, 12, 0, 0)) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(t: number): void {
    this.t = t;
  }
}

/**
 * Below this the sampled offset is noise (half a round trip, a late event-loop turn), and a clock
 * that stays put is worth more than one that jitters by a millisecond at every sample: the design
 * assumes NTP-synchronised hosts, so only a real skew (seconds) is corrected.
 */
const DEADBAND_MS = 100;
/** A sample whose round trip took longer than this says too little about the offset to be used. */
const MAX_RTT_MS = 2000;

/**
 * This node's clock moved onto a shared service's: `now()` is the base clock plus an offset
 * sampled from the service (the store's `now()`, Redis `TIME`), so nodes whose own clocks disagree
 * by seconds still agree where they must (rate windows, heartbeats, webhook leases). The offset is
 * measured against the machine's clock and applied to the base clock: in production they are the
 * same; a test's ManualClock keeps moving time as the test says while the offset stays the
 * machine's (zero on one host). A sample that fails keeps the last offset.
 */
export class SharedClock implements Clock {
  private skew = 0;
  private samples = 0;

  constructor(
    private readonly base: Clock,
    /** The service's time now, in epoch milliseconds. */
    private readonly read: () => Promise<number>,
    /** The machine's clock the offset is measured against. */
    private readonly machine: () => number = Date.now,
  ) {}

  now(): number {
    return this.base.now() + this.skew;
  }

  /** The service's time minus the machine's, as last sampled (0 within the dead band). */
  get offset(): number {
    return this.skew;
  }

  /** How many samples have been taken (for tests and metrics). */
  get sampled(): number {
    return this.samples;
  }

  /** Reads the service's clock once; resolves whether the service answered (the offset stays when not). */
  async sample(): Promise<boolean> {
    const sent = this.machine();
    let serviceNow: number;
    try {
      serviceNow = await this.read();
    } catch {
      return false;
    }
    this.observe(serviceNow, sent, this.machine());
    return true;
  }

  /**
   * One reading of the service's clock taken between `sent` and `received` (machine time). The
   * offset moves only when the reading says it is wrong by more than the reading's own uncertainty
   * (half the round trip) plus the dead band.
   */
  observe(serviceNow: number, sent: number, received: number): boolean {
    const rtt = received - sent;
    if (!Number.isFinite(serviceNow) || rtt < 0 || rtt > MAX_RTT_MS) return false;
    this.samples++;
    const measured = serviceNow - (sent + received) / 2;
    if (Math.abs(measured - this.skew) > rtt / 2 + DEADBAND_MS) this.skew = Math.abs(measured) <= DEADBAND_MS ? 0 : Math.round(measured);
    return true;
  }
}
