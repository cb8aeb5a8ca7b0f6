import { auditSuite } from "./audit.suite.js";
import { startEmbeddedMode } from "./harness.js";

auditSuite("embedded (pglite + in-process jobs)", startEmbeddedMode);
