// Dependency-injection tokens. Every constructor parameter names one explicitly with @Inject:
// the app must not depend on emitted decorator metadata (vitest does not emit it).
export const API_CONFIG = Symbol("ApiConfig");
/** `Db` from @gatehouse/db (Postgres or PGlite). */
export const DB = Symbol("Db");
/** The `PrismaClient` of `DB`. */
export const PRISMA = Symbol("PrismaClient");
/** The config-event `Bus` (Redis or in-process). */
export const BUS = Symbol("Bus");
/** `Sealer` bound to SECRETS_KEY. */
export const SEALER = Symbol("Sealer");
/** The pino root logger. */
export const LOGGER = Symbol("Logger");
/** The prom-client registry of this app instance. */
export const METRICS = Symbol("MetricsRegistry");
