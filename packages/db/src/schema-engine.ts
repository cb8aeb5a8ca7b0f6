import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as bg from "@prisma/schema-engine-wasm/schema_engine_bg";

export type { SchemaEngine } from "@prisma/schema-engine-wasm/schema_engine_bg";

// lib is ES2023 without DOM, and @types/node 20 does not declare WebAssembly: the little we use.
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, object>) => { exports: Record<string, unknown> };
};

let loaded: typeof bg.SchemaEngine | undefined;

/**
 * The package's own entry imports the `.wasm` file as an ES module, which Node 20 only allows
 * behind `--experimental-wasm-modules`. Instantiating the module by hand works without flags.
 */
export function loadSchemaEngine(): typeof bg.SchemaEngine {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const wasmPath = require.resolve("@prisma/schema-engine-wasm/schema_engine_bg").replace(/\.js$/, ".wasm");
  const module = new WebAssembly.Module(readFileSync(wasmPath));
  const instance = new WebAssembly.Instance(module, { "./schema_engine_bg.js": bg });
  bg.__wbg_set_wasm(instance.exports);
  (instance.exports.__wbindgen_start as () => void)();
  loaded = bg.SchemaEngine;
  return loaded;
}
