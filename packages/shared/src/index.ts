// Browser-safe root entry: named exports only. Node-only code lives in `@gatehouse/shared/node`.
export * from "./bus.js";
export * from "./config-snapshot.js";
export * from "./errors.js";
export * from "./principal.js";
export * from "./tenant-settings.js";
