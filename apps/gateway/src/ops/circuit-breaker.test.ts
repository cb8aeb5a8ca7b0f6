import { describe, expect, it } from "vitest";
import { CircuitBreaker, CircuitBreakers, CircuitOpenError, type CircuitState } from "./circuit-breaker.js";

function clock() {
  const c = { t: 0, now: () => c.t };
  return c;
}

const fail = () => Promise.reject(new Error("connect ECONNREFUSED"));
const ok = () => Promise.resolve("ok");

describe("CircuitBreaker", () => {
  it("opens after the threshold of consecutive failures and fails fast while open", async () => {
    const c = clock();
    const breaker = new CircuitBreaker({ failureThreshold: 3, coolDownMs: 1000, now: c.now });
    for (let i = 0; i < 2; i++) await expect(breaker.run(fail)).rejects.toThrow("ECONNREFUSED");
    expect(breaker.state).toBe("closed");
    await expect(breaker.run(fail)).rejects.toThrow("ECONNREFUSED");
    expect(breaker.state).toBe("open");
    let called = false;
    c.t = 400;
    const refused = await breaker
      .run(async () => {
        called = true;
      })
      .catch((e: unknown) => e);
    expect(called).toBe(false);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect((refused as CircuitOpenError).retryAfterMs).toBe(600);
  });

  it("a success resets the failure count", async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 2 });
    await breaker.run(fail).catch(() => {});
    await breaker.run(ok);
    await breaker.run(fail).catch(() => {});
    expect(breaker.state).toBe("closed");
  });

  it("half-open after the cool-down: one probe at a time; success closes", async () => {
    const c = clock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, coolDownMs: 1000, now: c.now });
    await breaker.run(fail).catch(() => {});
    c.t = 1000;
    expect(breaker.state).toBe("half_open");
    const probe = breaker.tryAcquire();
    expect(probe).not.toBeNull();
    expect(breaker.tryAcquire()).toBeNull();
    probe!.success();
    expect(breaker.state).toBe("closed");
    expect(breaker.tryAcquire()).not.toBeNull();
  });

  it("a failed probe opens the circuit for another full cool-down", async () => {
    const c = clock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, coolDownMs: 1000, now: c.now });
    await breaker.run(fail).catch(() => {});
    c.t = 1500;
    await breaker.run(fail).catch(() => {});
    expect(breaker.state).toBe("open");
    expect(breaker.retryAfterMs).toBe(1000);
    c.t = 2499;
    expect(breaker.state).toBe("open");
    c.t = 2500;
    expect(breaker.state).toBe("half_open");
  });

  it("errors that say nothing about the upstream do not count, and free the probe slot", async () => {
    const c = clock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, coolDownMs: 10, now: c.now });
    const cancelled = () => Promise.reject(new Error("cancelled by client"));
    const isFailure = (e: unknown) => !(e as Error).message.includes("cancelled");
    await breaker.run(cancelled, isFailure).catch(() => {});
    expect(breaker.state).toBe("closed");
    await breaker.run(fail, isFailure).catch(() => {});
    c.t = 10;
    await breaker.run(cancelled, isFailure).catch(() => {});
    expect(breaker.state).toBe("half_open");
    expect(breaker.tryAcquire()).not.toBeNull();
  });

  it("a permit settles once; late failures of calls started before opening change nothing", async () => {
    const c = clock();
    const breaker = new CircuitBreaker({ failureThreshold: 2, coolDownMs: 100, now: c.now });
    const permits = [breaker.tryAcquire()!, breaker.tryAcquire()!, breaker.tryAcquire()!];
    permits[0]!.failure();
    permits[0]!.failure();
    expect(breaker.state).toBe("closed");
    permits[1]!.failure();
    expect(breaker.state).toBe("open");
    c.t = 50;
    permits[2]!.failure();
    expect(breaker.retryAfterMs).toBe(50);
  });

  it("reports every transition", async () => {
    const c = clock();
    const seen: Array<[CircuitState, CircuitState]> = [];
    const breaker = new CircuitBreaker({
      failureThreshold: 1,
      coolDownMs: 5,
      now: c.now,
      onStateChange: (s, p) => seen.push([s, p]),
    });
    await breaker.run(fail).catch(() => {});
    c.t = 5;
    await breaker.run(ok);
    expect(seen).toEqual([
      ["open", "closed"],
      ["half_open", "open"],
      ["closed", "half_open"],
    ]);
  });
});

describe("CircuitBreakers", () => {
  it("keeps one breaker per upstream and tells which one changed", async () => {
    const changes: string[] = [];
    const breakers = new CircuitBreakers({ failureThreshold: 1 }, (key, state) =>
      changes.push(`${key}:${state}`),
    );
    await breakers
      .get("t1/github")
      .run(fail)
      .catch(() => {});
    expect(breakers.get("t1/github").state).toBe("open");
    expect(breakers.get("t1/fs").state).toBe("closed");
    expect(breakers.get("t2/github").state).toBe("closed");
    expect(changes).toEqual(["t1/github:open"]);
    breakers.deletePrefix("t1/");
    expect(breakers.size).toBe(1);
  });
});
