export { type ApiDeps, createApiApp } from "./app.js";
export {
  type ApiConfig,
  type ApiEnv,
  ApiEnvSchema,
  apiConfig,
  ConfigError,
  parseApiEnv,
  requireSecrets,
} from "./config/api.config.js";
