import { auditSuite } from "./audit.suite.js";
import { startDistributed } from "./harness.js";

auditSuite("postgres + redis", startDistributed);
