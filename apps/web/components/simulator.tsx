"use client";
import type { FormState } from "@/lib/actions";
import { ActionForm, SubmitButton } from "./action-form";

interface Decision {
  decision: "allow" | "deny";
  ruleId: string | null;
  reason: string;
  trace?: Array<{ ruleId: string; effect?: string; matched?: boolean; reason?: string }>;
}

/** Principal, upstream, tool, arguments → the decision, the deciding rule and the per-rule trace. */
export function Simulator({ action }: { action: (s: FormState, f: FormData) => Promise<FormState> }) {
  return (
    <ActionForm
      action={action}
      label="Policy simulator"
      render={(data) => {
        const d = data as Decision;
        return (
          <div role="status" className="panel" aria-label="Decision">
            <p>
              Decision: <span className={`decision-${d.decision}`}>{d.decision}</span>
              {d.ruleId ? (
                <>
                  {" "}
                  by rule <code>{d.ruleId}</code>
                </>
              ) : (
                " (default effect)"
              )}
            </p>
            <p className="muted">{d.reason}</p>
            {Array.isArray(d.trace) && d.trace.length > 0 ? (
              <table>
                <caption className="sr-only">Per-rule trace</caption>
                <thead>
                  <tr>
                    <th scope="col">Rule</th>
                    <th scope="col">Matched</th>
                    <th scope="col">Why</th>
                  </tr>
                </thead>
                <tbody>
                  {d.trace.map((t) => (
                    <tr key={t.ruleId}>
                      <td>
                        <code>{t.ruleId}</code>
                      </td>
                      <td>{t.matched ? "yes" : "no"}</td>
                      <td>{t.reason ?? ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : null}
          </div>
        );
      }}
    >
      <div className="field">
        <label htmlFor="sim-agent">Agent</label>
        <input id="sim-agent" name="agent" />
      </div>
      <div className="field">
        <label htmlFor="sim-roles">Roles</label>
        <input id="sim-roles" name="roles" aria-describedby="sim-roles-hint" />
        <span id="sim-roles-hint" className="hint">
          Comma separated
        </span>
      </div>
      <div className="field">
        <label htmlFor="sim-upstream">Upstream</label>
        <input id="sim-upstream" name="upstream" required />
      </div>
      <div className="field">
        <label htmlFor="sim-tool">Tool</label>
        <input id="sim-tool" name="tool" required aria-describedby="sim-tool-hint" />
        <span id="sim-tool-hint" className="hint">
          The upstream's own tool name, without the prefix
        </span>
      </div>
      <div className="field">
        <label htmlFor="sim-args">Arguments (JSON)</label>
        <textarea id="sim-args" name="arguments" rows={3} className="code" style={{ minHeight: 60 }} />
      </div>
      <div>
        <SubmitButton variant="secondary">Simulate</SubmitButton>
      </div>
    </ActionForm>
  );
}
