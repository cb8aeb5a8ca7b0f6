export type CircuitState = "closed" | "open" | "half_open";

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  failureThreshold?: number;
  /** How long the circuit stays open before letting a probe through. Default 3 s (recovery within it once the upstream is back). */
  coolDownMs?: number;
  /** Probes allowed at once while half-open. Default 1. */
  halfOpenMaxCalls?: number;
  /** Milliseconds clock, injectable for tests. */
  now?: () => number;
  onStateChange?: (state: CircuitState, previous: CircuitState) => void;
}

/** Thrown by `run` when the circuit refuses the call; map it to `UPSTREAM_UNAVAILABLE`. */
export class CircuitOpenError extends Error {
  constructor(readonly retryAfterMs: number) {
    super(`circuit open; next attempt in ${retryAfterMs} ms`);
    this.name = "CircuitOpenError";
  }
}

/** A permit for one call: report exactly one of success() or failure(); release() if neither applies. */
export interface CircuitPermit {
  success(): void;
  failure(): void;
  /** The call ended in a way that says nothing about the upstream's health (e.g. the client cancelled). */
  release(): void;
}

/**
 * Per-upstream breaker. Closed: calls pass, consecutive failures are counted and
 * `failureThreshold` of them open it. Open: calls fail fast for `coolDownMs`. Half-open: up to
 * `halfOpenMaxCalls` probes pass; a success closes it, a failure opens it for another cool-down.
 * What counts as a failure is the caller's choice: transport errors, timeouts, 5xx — not a
 * tool answering `isError: true`, which is a healthy upstream saying no.
 */
export class CircuitBreaker {
  private current: CircuitState = "closed";
  private failures = 0;
  private openedAt = 0;
  private probes = 0;
  private readonly threshold: number;
  private readonly coolDownMs: number;
  private readonly halfOpenMax: number;
  private readonly now: () => number;

  constructor(private readonly options: CircuitBreakerOptions = {}) {
    this.threshold = options.failureThreshold ?? 5;
    this.coolDownMs = options.coolDownMs ?? 3000;
    this.halfOpenMax = options.halfOpenMaxCalls ?? 1;
    this.now = options.now ?? Date.now;
    if (this.threshold < 1) throw new RangeError("failureThreshold must be >= 1");
  }

  /** Current state; an open circuit whose cool-down is over reads as half-open. */
  get state(): CircuitState {
    if (this.current === "open" && this.now() - this.openedAt >= this.coolDownMs)
      this.transition("half_open");
    return this.current;
  }

  /** Milliseconds until an open circuit lets a probe through (0 unless open). */
  get retryAfterMs(): number {
    return this.state === "open" ? Math.max(0, this.openedAt + this.coolDownMs - this.now()) : 0;
  }

  /**
   * Ask to make a call. Returns a permit, or null when the circuit refuses (open, or half-open
   * with its probes in flight).
   */
  tryAcquire(): CircuitPermit | null {
    const state = this.state;
    if (state === "open") return null;
    if (state === "half_open") {
      if (this.probes >= this.halfOpenMax) return null;
      this.probes++;
    }
    const probe = state === "half_open";
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      if (probe) this.probes--;
      fn();
    };
    return {
      success: () => settle(() => this.onSuccess()),
      failure: () => settle(() => this.onFailure(probe)),
      release: () => settle(() => {}),
    };
  }

  /**
   * Run `fn` under the breaker. `isFailure` decides which errors count against the upstream
   * (default: all). Throws `CircuitOpenError` without calling `fn` when refused.
   */
  async run<T>(fn: () => Promise<T>, isFailure: (err: unknown) => boolean = () => true): Promise<T> {
    const permit = this.tryAcquire();
    if (!permit) throw new CircuitOpenError(this.retryAfterMs || this.coolDownMs);
    try {
      const result = await fn();
      permit.success();
      return result;
    } catch (err) {
      if (isFailure(err)) permit.failure();
      else permit.release();
      throw err;
    }
  }

  /** Force closed (e.g. the upstream's config changed). */
  reset(): void {
    this.failures = 0;
    this.probes = 0;
    this.transition("closed");
  }

  private onSuccess(): void {
    this.failures = 0;
    if (this.current !== "closed") this.transition("closed");
  }

  private onFailure(probe: boolean): void {
    if (probe || this.current === "half_open") {
      this.open();
      return;
    }
    // A late failure from a call that started before the circuit opened changes nothing.
    if (this.current === "open") return;
    this.failures++;
    if (this.failures >= this.threshold) this.open();
  }

  private open(): void {
    this.openedAt = this.now();
    this.failures = 0;
    this.transition("open");
  }

  private transition(next: CircuitState): void {
    const previous = this.current;
    if (previous === next) return;
    this.current = next;
    this.options.onStateChange?.(next, previous);
  }
}

/**
 * One breaker per key (e.g. `${tenantId}/${upstreamName}`), created on first use, and per-caller
 * breakers beside them (`caller`): failures one caller can cause with its own arguments (a call
 * that runs past the timeout) open only that caller's circuit, never the tenant's. Caller
 * breakers report no state changes (the metrics are per upstream) and exist only while they
 * have failures to remember.
 */
export class CircuitBreakers {
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly callers = new Map<string, CircuitBreaker>();

  constructor(
    private readonly options: Omit<CircuitBreakerOptions, "onStateChange"> = {},
    private readonly onStateChange?: (key: string, state: CircuitState, previous: CircuitState) => void,
  ) {}

  get(key: string): CircuitBreaker {
    let breaker = this.breakers.get(key);
    if (!breaker) {
      const onStateChange = this.onStateChange;
      breaker = new CircuitBreaker({
        ...this.options,
        onStateChange: onStateChange ? (s, p) => onStateChange(key, s, p) : undefined,
      });
      this.breakers.set(key, breaker);
    }
    return breaker;
  }

  /** `key`'s breaker for one caller: the existing one, or (with `create`) a new one. */
  caller(key: string, callerId: string, create: true): CircuitBreaker;
  caller(key: string, callerId: string, create?: false): CircuitBreaker | undefined;
  caller(key: string, callerId: string, create = false): CircuitBreaker | undefined {
    const k = `${key}\u0000${callerId}`;
    let breaker = this.callers.get(k);
    if (!breaker && create) {
      breaker = new CircuitBreaker(this.options);
      this.callers.set(k, breaker);
    }
    return breaker;
  }

  /** Forgets a caller's breaker once it has nothing to remember (closed, no failures counted). */
  forgetCaller(key: string, callerId: string): void {
    this.callers.delete(`${key}\u0000${callerId}`);
  }

  /** Drop a breaker (upstream deleted or reconfigured), and its callers'. */
  delete(key: string): void {
    this.breakers.delete(key);
    for (const k of this.callers.keys()) if (k.startsWith(`${key}\u0000`)) this.callers.delete(k);
  }

  /** Drop every breaker whose key starts with `prefix` (e.g. a tenant's `${tenantId}/`). */
  deletePrefix(prefix: string): void {
    for (const key of this.breakers.keys()) if (key.startsWith(prefix)) this.breakers.delete(key);
    for (const key of this.callers.keys()) if (key.startsWith(prefix)) this.callers.delete(key);
  }

  get size(): number {
    return this.breakers.size;
  }
}
