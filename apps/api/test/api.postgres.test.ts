import { apiSuite } from "./api.suite.js";
import { startDistributed } from "./harness.js";

apiSuite("postgres + redis", startDistributed);
