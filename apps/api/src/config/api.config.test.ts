import { generateSecretsKey } from "@gatehouse/shared/node";
import { describe, expect, test } from "vitest";
import { ConfigError, parseApiEnv, requireSecrets } from "./api.config.js";

describe("parseApiEnv", () => {
  test("defaults for an empty environment", () => {
    const env = parseApiEnv({});
    expect(env).toMatchObject({
      API_PORT: 4000,
      REDIS_KEY_PREFIX: "gatehouse:",
      DATA_DIR: "./.data",
      PUBLIC_GATEWAY_URL: "http://localhost:8080",
      LOG_LEVEL: "info",
    });
    expect(env.DATABASE_URL).toBeUndefined();
    expect(env.REDIS_URL).toBeUndefined();
  });

  test("empty strings count as unset", () => {
    const env = parseApiEnv({ DATABASE_URL: "", REDIS_URL: "", API_PORT: "", ADMIN_TOKEN: "" });
    expect(env.DATABASE_URL).toBeUndefined();
    expect(env.API_PORT).toBe(4000);
    expect(env.ADMIN_TOKEN).toBeUndefined();
  });

  test("fails naming every bad variable, never echoing a value", () => {
    const secret = "short-secret";
    let error: unknown;
    try {
      parseApiEnv({
        API_PORT: "http",
        DATABASE_URL: "mysql://x",
        REDIS_URL: "localhost:6379",
        ADMIN_TOKEN: secret,
        SECRETS_KEY: "not-a-key",
        PUBLIC_GATEWAY_URL: "gateway",
        LOG_LEVEL: "loud",
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const name of [
      "API_PORT",
      "DATABASE_URL",
      "REDIS_URL",
      "ADMIN_TOKEN",
      "SECRETS_KEY",
      "PUBLIC_GATEWAY_URL",
      "LOG_LEVEL",
    ]) {
      expect(message).toContain(`${name}:`);
    }
    expect(message).not.toContain(secret);
    expect(message).not.toContain("not-a-key");
  });

  test("trailing slashes are dropped from PUBLIC_GATEWAY_URL", () => {
    expect(parseApiEnv({ PUBLIC_GATEWAY_URL: "https://gw.example.com/" }).PUBLIC_GATEWAY_URL).toBe(
      "https://gw.example.com",
    );
  });

  test("requireSecrets names what is missing", () => {
    expect(() => requireSecrets(parseApiEnv({}))).toThrow(/ADMIN_TOKEN[\s\S]*SECRETS_KEY/);
    const env = parseApiEnv({ ADMIN_TOKEN: "a".repeat(32), SECRETS_KEY: generateSecretsKey() });
    expect(requireSecrets(env).ADMIN_TOKEN).toBe("a".repeat(32));
  });
});
