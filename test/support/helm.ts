// Renders the Helm chart under docker/helm without the helm binary, and checks the output against
// the Kubernetes API schemas.
// - Rendering: Go's own text/template (the standard library compiled to WebAssembly, npm
//   @evertdespiegeleer/go-template), with Helm's data model (.Values, .Release, .Chart) and Helm's
//   template set (every file parsed together, so the `define`s of _helpers.tpl are visible; files
//   starting with `_` render nothing). It runs with missingkey=error, stricter than Helm: a
//   template naming a value absent from values.yaml fails. The chart uses no Sprig functions, so
//   what renders here renders the same under Helm.
// - Checking: each object against its Kubernetes OpenAPI schema (npm kubernetes-models: types,
//   required fields, enums, formats), then, since those schemas allow unknown fields, a TypeScript
//   compile of the objects as literals of kubernetes-models' generated types: an unknown or
//   misspelt field anywhere is an excess-property error.
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parse as renderGoTemplate } from "@evertdespiegeleer/go-template";
import ts from "typescript";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { repoRoot } from "./processes.js";

export const chartDir = resolve(repoRoot, "docker/helm/gatehouse");

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; [k: string]: unknown };
  // biome-ignore lint/suspicious/noExplicitAny: rendered manifests are read field by field in tests
  spec?: any;
  [k: string]: unknown;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Helm's coalescing of user values over the chart's: maps merge, everything else replaces. */
export function mergeValues(base: Json, over: Json): Json {
  if (!isObject(base) || !isObject(over)) return over;
  const out: Record<string, Json> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? mergeValues(base[k] as Json, v) : v;
  return out;
}

/** `helm template <release> docker/helm/gatehouse --namespace <ns> -f <overrides>`, as objects. */
export async function renderChart(
  overrides: Record<string, unknown> = {},
  release = { name: "gatehouse", namespace: "gatehouse" },
): Promise<KubeObject[]> {
  const chart = parseYaml(await readFile(join(chartDir, "Chart.yaml"), "utf8")) as Record<string, string>;
  const values = mergeValues(
    parseYaml(await readFile(join(chartDir, "values.yaml"), "utf8")) as Json,
    overrides as Json,
  );
  const names = (await readdir(join(chartDir, "templates"))).sort();
  const helpers = (
    await Promise.all(
      names.filter((n) => n.startsWith("_")).map((n) => readFile(join(chartDir, "templates", n), "utf8")),
    )
  ).join("\n");
  const data = {
    Values: values,
    Release: {
      Name: release.name,
      Namespace: release.namespace,
      Service: "Helm",
      IsInstall: true,
      IsUpgrade: false,
      Revision: 1,
    },
    Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion },
  };
  const objects: KubeObject[] = [];
  for (const name of names.filter((n) => !n.startsWith("_") && /\.ya?ml$/.test(n))) {
    const text = await readFile(join(chartDir, "templates", name), "utf8");
    let out: string;
    try {
      out = await renderGoTemplate(`${helpers}${text}`, data);
    } catch (e) {
      throw new Error(`templates/${name}: ${(e as Error).message}`);
    }
    for (const doc of parseAllDocuments(out)) {
      if (doc.errors.length > 0) throw new Error(`templates/${name}: ${doc.errors[0]?.message}\n${out}`);
      const obj = doc.toJS() as KubeObject | null;
      if (obj) objects.push(obj);
    }
  }
  return objects;
}

// apiVersion/kind → the module of kubernetes-models that holds its class and its interface.
function modelPath(obj: KubeObject): string {
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
  return `kubernetes-models/${group ? `${group}/` : ""}${version}/${obj.kind}`;
}

/** Schema errors of every object, as `Kind/name: message` lines (empty when all are valid). */
export async function schemaErrors(objects: KubeObject[]): Promise<string[]> {
  const errors: string[] = [];
  for (const obj of objects) {
    const where = `${obj.kind}/${obj.metadata?.name}`;
    let Model: new (data: unknown) => { validate(): void };
    try {
      const mod = (await import(modelPath(obj))) as Record<string, typeof Model>;
      Model = mod[obj.kind] as typeof Model;
    } catch {
      errors.push(`${where}: no Kubernetes schema for ${obj.apiVersion} ${obj.kind}`);
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (e) {
      errors.push(`${where}: ${(e as Error).message}`);
    }
  }
  return errors;
}

/** Unknown or misspelt fields, found by compiling the objects against the generated API types. */
export async function unknownFieldErrors(objects: KubeObject[]): Promise<string[]> {
  const dir = resolve(repoRoot, "node_modules/.cache/gatehouse-helm-check");
  await mkdir(dir, { recursive: true });
  const file = join(dir, `objects-${process.pid}.ts`);
  const lines = objects.map(
    (o, i) =>
      `import type { I${o.kind} as T${i} } from "${modelPath(o)}";\n` +
      `export const o${i}: T${i} = ${JSON.stringify(o, null, 2)};`,
  );
  await writeFile(file, `${lines.join("\n")}\n`);
  try {
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      types: [],
    });
    return ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file?.fileName === file)
      .map((d) => {
        const { line } = d.file?.getLineAndCharacterOfPosition(d.start ?? 0) ?? { line: 0 };
        const at = objects[lines.slice(0, objects.length).findIndex((_, i) => isLineIn(lines, i, line))];
        return `${at ? `${at.kind}/${at.metadata.name}: ` : ""}${ts.flattenDiagnosticMessageText(d.messageText, " ")}`;
      });
  } finally {
    await rm(file, { force: true });
  }
}

// Whether 0-based line `line` of the generated file falls in the chunk of object `i`.
function isLineIn(chunks: string[], i: number, line: number): boolean {
  let start = 0;
  for (let k = 0; k < i; k++) start += (chunks[k] ?? "").split("\n").length;
  return line >= start && line < start + (chunks[i] ?? "").split("\n").length;
}
