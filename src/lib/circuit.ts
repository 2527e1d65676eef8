// A circuit breaker on a shared service (the store, Redis): after failures in a row the service is
// taken as down and nothing on the request path waits on it; one probe at a time, at most one per
// backoff interval, decides when it is back. Time is passed in, so tests drive it with a clock.

/** What a caller may do now: go ahead (closed), send the one probe that is due, or not call at all. */
export type Passage = 'pass' | 'probe' | 'refuse';

export interface CircuitOptions {
  /** Failures in a row that open the circuit. */
  failuresToOpen: number;
  /** First wait before a probe; it doubles after each failed probe, up to maxProbeMs. */
  probeMs: number;
  maxProbeMs: number;
  /** Told when the circuit opens (true) or closes (false). */
  onChange?: (open: boolean) => void;
}

export class Circuit {
  private failures = 0;
  private isOpen = false;
  private probing = false;
  private nextProbeAt = 0;
  private waitMs: number;
  /** Times opened, probes sent (for metrics and tests). */
  opened = 0;
  probes = 0;

  constructor(private readonly opts: CircuitOptions) {
    this.waitMs = opts.probeMs;
  }

  get open(): boolean {
    return this.isOpen;
  }

  /** Whether a probe is out now. */
  get probeOut(): boolean {
    return this.probing;
  }

  /** Whether a call may go to the service at `now`; 'probe' must be answered with success(true) or failure(now, true). */
  enter(now: number): Passage {
    if (!this.isOpen) return 'pass';
    if (this.probing || now < this.nextProbeAt) return 'refuse';
    this.probing = true;
    this.probes++;
    return 'probe';
  }

  /** A call answered: a probe's success closes the circuit; any success ends a run of failures. */
  success(probe: boolean): void {
    if (probe) this.probing = false;
    this.failures = 0;
    if (this.isOpen && probe) {
      this.isOpen = false;
      this.waitMs = this.opts.probeMs;
      this.opts.onChange?.(false);
    }
  }

  /** A call that found the service down (an error or a timeout, not a refusal of the request itself). */
  failure(now: number, probe: boolean): void {
    if (probe) {
      this.probing = false;
      this.waitMs = Math.min(this.opts.maxProbeMs, this.waitMs * 2);
      this.nextProbeAt = now + this.waitMs;
      return;
    }
    if (this.isOpen) return;
    if (++this.failures < this.opts.failuresToOpen) return;
    this.isOpen = true;
    this.opened++;
    this.waitMs = this.opts.probeMs;
    this.nextProbeAt = now + this.waitMs;
    this.opts.onChange?.(true);
  }
}
