import { apiSuite } from "./api.suite.js";
import { startEmbeddedMode } from "./harness.js";

apiSuite("embedded (pglite + in-process bus)", startEmbeddedMode);
