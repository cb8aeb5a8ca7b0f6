export declare const CONFORMANCE_VERSION: string;
export declare function conformanceHome(): string;
export interface ConformancePaths {
  nodePkg: string;
  nodeBin: string;
  suiteDir: string;
  suiteMain: string;
}
export declare function ensureConformance(opts?: { log?: (msg: string) => void }): ConformancePaths;
export interface ConformanceCheck {
  scenario: string;
  id: string;
  status: "SUCCESS" | "FAILURE" | "WARNING" | "INFO" | "SKIPPED";
  errorMessage?: string;
}
export interface ConformanceResult {
  passed: number;
  failed: number;
  exitCode: number | null;
  output: string;
  scenarios: Array<{ scenario: string; passed: number; failed: number }>;
  checks: ConformanceCheck[];
}
export declare function runConformance(
  url: string,
  opts?: { suite?: string; scenario?: string; timeoutMs?: number; log?: (msg: string) => void },
): Promise<ConformanceResult>;
export declare function passingChecks(result: ConformanceResult): Set<string>;
export declare const INSPECTOR_VERSION: string;
export declare function ensureInspector(opts?: { log?: (msg: string) => void }): {
  nodeBin: string;
  inspectorMain: string;
};
