"use client";
import { SECRET_MASK, UpstreamCreateSchema, zodIssuesToDetails } from "@gatehouse/shared";
import { useActionState, useMemo, useState } from "react";
import type { FormState } from "@/lib/actions";
import { useCsrf } from "./csrf";

type Action = (state: FormState, formData: FormData) => Promise<FormState>;

export interface UpstreamFormValues {
  name: string;
  description: string;
  transport: "streamable-http" | "sse";
  url: string;
  toolPrefix: string;
  authMode: "none" | "bearer" | "header";
  token: string;
  headerName: string;
  headerValue: string;
  enabled: boolean;
}

const EMPTY: UpstreamFormValues = {
  name: "",
  description: "",
  transport: "streamable-http",
  url: "",
  toolPrefix: "",
  authMode: "none",
  token: "",
  headerName: "",
  headerValue: "",
  enabled: true,
};

function toBody(v: UpstreamFormValues): Record<string, unknown> {
  const auth =
    v.authMode === "bearer"
      ? { mode: "bearer", token: v.token }
      : v.authMode === "header"
        ? { mode: "header", headerName: v.headerName, value: v.headerValue }
        : { mode: "none" };
  return {
    name: v.name,
    ...(v.description ? { description: v.description } : {}),
    transport: v.transport,
    url: v.url,
    ...(v.toolPrefix ? { toolPrefix: v.toolPrefix } : {}),
    auth,
    enabled: v.enabled,
  };
}

/** Where a field's error from the shared schema shows. */
const FIELD_OF: Record<string, keyof UpstreamFormValues> = {
  name: "name",
  description: "description",
  url: "url",
  toolPrefix: "toolPrefix",
  "auth.token": "token",
  "auth.headerName": "headerName",
  "auth.value": "headerValue",
};

/**
 * Add or edit an HTTP upstream. Validates as you type with the API's own zod schema (from
 * packages/shared), so the messages are the API's; "Test connection" lists the tools without saving.
 */
export function UpstreamForm({
  save,
  test,
  initial,
  submitLabel,
}: {
  save: Action;
  test: Action;
  initial?: Partial<UpstreamFormValues>;
  submitLabel: string;
}) {
  const csrf = useCsrf();
  const [values, setValues] = useState<UpstreamFormValues>({ ...EMPTY, ...initial });
  const [touched, setTouched] = useState<Record<string, boolean>>({});
  const [saveState, saveAction] = useActionState(save, {});
  const [testState, testAction] = useActionState(test, {});
  const body = useMemo(() => toBody(values), [values]);
  const errors = useMemo(() => {
    const result = UpstreamCreateSchema.safeParse(body);
    const byField: Partial<Record<keyof UpstreamFormValues, string>> = {};
    if (!result.success) {
      for (const d of zodIssuesToDetails(result.error.issues)) {
        const field = FIELD_OF[d.path];
        if (field && !byField[field]) byField[field] = d.message;
      }
    }
    return byField;
  }, [body]);
  const set = <K extends keyof UpstreamFormValues>(key: K, value: UpstreamFormValues[K]) => {
    setValues((v) => ({ ...v, [key]: value }));
    setTouched((t) => ({ ...t, [key]: true }));
  };
  const error = (key: keyof UpstreamFormValues) => (touched[key] ? errors[key] : undefined);
  const input = (
    key: "name" | "description" | "url" | "toolPrefix" | "token" | "headerName" | "headerValue",
    label: string,
    hint?: string,
    type = "text",
  ) => (
    <div className="field">
      <label htmlFor={`up-${key}`}>{label}</label>
      <input
        id={`up-${key}`}
        type={type}
        value={values[key]}
        onChange={(e) => set(key, e.target.value)}
        aria-invalid={error(key) ? true : undefined}
        aria-describedby={`up-${key}-hint up-${key}-error`}
        autoComplete="off"
      />
      {hint ? (
        <span id={`up-${key}-hint`} className="hint">
          {hint}
        </span>
      ) : null}
      <span id={`up-${key}-error`} className="field-error" aria-live="polite">
        {error(key) ?? ""}
      </span>
    </div>
  );
  const testResult = testState.data as
    | {
        ok: boolean;
        latencyMs: number;
        error: string | null;
        tools: Array<{ name: string; description: string | null }>;
      }
    | undefined;
  const secretKept = values.token === SECRET_MASK || values.headerValue === SECRET_MASK;
  return (
    <div className="form">
      <div className="grid-2">
        {input("name", "Name", "Lowercase letters, digits, '_' or '-'; tools are prefixed with it")}
        {input("url", "URL", "The upstream's MCP endpoint, e.g. https://mcp.example.com/mcp", "url")}
        <div className="field">
          <label htmlFor="up-transport">Transport</label>
          <select
            id="up-transport"
            value={values.transport}
            onChange={(e) => set("transport", e.target.value as UpstreamFormValues["transport"])}
          >
            <option value="streamable-http">Streamable HTTP</option>
            <option value="sse">SSE (legacy)</option>
          </select>
        </div>
        {input("toolPrefix", "Tool prefix", "Defaults to the name followed by _")}
        <div className="field">
          <label htmlFor="up-auth">Authentication to the upstream</label>
          <select
            id="up-auth"
            value={values.authMode}
            onChange={(e) => set("authMode", e.target.value as UpstreamFormValues["authMode"])}
          >
            <option value="none">None</option>
            <option value="bearer">Bearer token</option>
            <option value="header">Custom header</option>
          </select>
        </div>
        {values.authMode === "bearer"
          ? input(
              "token",
              "Bearer token",
              secretKept ? "Stored; leave as is to keep it" : undefined,
              "password",
            )
          : null}
        {values.authMode === "header" ? (
          <>
            {input("headerName", "Header name", "e.g. X-API-Key")}
            {input(
              "headerValue",
              "Header value",
              secretKept ? "Stored; leave as is to keep it" : undefined,
              "password",
            )}
          </>
        ) : null}
        {input("description", "Description")}
        <div className="field">
          <span className="label" id="up-enabled-label">
            Enabled
          </span>
          <label>
            <input
              type="checkbox"
              checked={values.enabled}
              onChange={(e) => set("enabled", e.target.checked)}
            />{" "}
            Serve this upstream's tools
          </label>
        </div>
      </div>
      <div className="actions">
        <form action={saveAction} aria-label={submitLabel}>
          <input type="hidden" name="csrf" value={csrf} />
          <input type="hidden" name="body" value={JSON.stringify(body)} />
          <button type="submit" className="button primary">
            {submitLabel}
          </button>
        </form>
        <form action={testAction} aria-label="Test connection">
          <input type="hidden" name="csrf" value={csrf} />
          <input type="hidden" name="body" value={JSON.stringify(body)} />
          <button type="submit" className="button secondary" disabled={secretKept}>
            Test connection
          </button>
        </form>
      </div>
      {saveState.error ? (
        <div role="alert" className="alert error">
          <p>{saveState.error}</p>
          {saveState.fields?.length ? (
            <ul>
              {saveState.fields.map((f) => (
                <li key={f.path + f.message}>
                  <code>{f.path}</code>: {f.message}
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
      {saveState.ok ? (
        <p role="status" className="alert success">
          {saveState.ok}
        </p>
      ) : null}
      {testState.error ? (
        <p role="alert" className="alert error">
          {testState.error}
        </p>
      ) : null}
      {testResult ? (
        <div role="status" className={`alert ${testResult.ok ? "success" : "error"}`}>
          {testResult.ok ? (
            <>
              <p>
                Connected in {testResult.latencyMs} ms: {testResult.tools.length} tools
              </p>
              <ul>
                {testResult.tools.slice(0, 30).map((t) => (
                  <li key={t.name}>
                    <code>{t.name}</code> {t.description ? `— ${t.description}` : ""}
                  </li>
                ))}
              </ul>
            </>
          ) : (
            <p>Could not connect: {testResult.error}</p>
          )}
        </div>
      ) : null}
    </div>
  );
}
