"use client";
import { type ReactNode, useActionState } from "react";
import { useFormStatus } from "react-dom";
import type { FormState } from "@/lib/actions";
import { CopyButton } from "./copy-button";
import { useCsrf } from "./csrf";

type Action = (state: FormState, formData: FormData) => Promise<FormState>;

/**
 * A form bound to a server action: carries the CSRF token, shows the API's own error (and each bad
 * field) in an alert, a success note in a status region, and a one-time secret with a copy button.
 */
export function ActionForm({
  action,
  children,
  className,
  label,
  secretLabel = "Copy it now: it is shown this once.",
  render,
}: {
  action: Action;
  children: ReactNode;
  className?: string;
  /** Accessible name of the form. */
  label?: string;
  secretLabel?: string;
  /** Renders `state.data` (simulator decisions and the like). */
  render?: (data: unknown) => ReactNode;
}) {
  const [state, formAction] = useActionState(action, {});
  const csrf = useCsrf();
  return (
    <form action={formAction} className={className ?? "form"} aria-label={label}>
      <input type="hidden" name="csrf" value={csrf} />
      {children}
      {state.error ? (
        <div role="alert" className="alert error">
          <p>{state.error}</p>
          {state.fields && state.fields.length > 0 ? (
            <ul>
              {state.fields.map((f) => (
                <li key={`${f.path}:${f.message}`}>
                  <code>{f.path || "(body)"}</code>: {f.message}
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
      {state.ok && !state.error ? (
        <p role="status" className="alert success">
          {state.ok}
        </p>
      ) : null}
      {state.secret ? (
        <fieldset className="secret">
          <legend>{secretLabel}</legend>
          <div className="secret-row">
            <code className="secret-value" data-testid="secret">
              {state.secret}
            </code>
            <CopyButton value={state.secret} />
          </div>
        </fieldset>
      ) : null}
      {render && state.data !== undefined ? render(state.data) : null}
    </form>
  );
}

export function SubmitButton({
  children,
  variant = "primary",
}: {
  children: ReactNode;
  variant?: "primary" | "secondary" | "danger";
}) {
  const { pending } = useFormStatus();
  return (
    <button type="submit" className={`button ${variant}`} disabled={pending} aria-disabled={pending}>
      {pending ? "Working…" : children}
    </button>
  );
}
