import { ApiError } from "@gatehouse/api-client";
import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";

/** What a form shows after its action ran. */
export interface FormState {
  ok?: string;
  error?: string;
  /** Per-field errors from the API (`rules[1].when: …`). */
  fields?: Array<{ path: string; message: string }>;
  /** A secret shown this once (a new API key or token), with a copy button. */
  secret?: string;
  /** Any other data the form renders (a simulator's decision, a tool list). */
  data?: unknown;
}

export const CSRF_FIELD = "csrf";

export function csrfOf(formData: FormData): string {
  return String(formData.get(CSRF_FIELD) ?? "");
}

/** Runs a write against the API; its problem (the API's own message and fields) becomes the form's state. */
export async function attempt(run: () => Promise<FormState>): Promise<FormState> {
  let state: FormState;
  try {
    state = await run();
  } catch (err) {
    if (err instanceof ApiError) {
      if (err.status === 401) redirect("/sign-in?expired=1");
      return { error: err.message, fields: err.fieldErrors };
    }
    throw err;
  }
  revalidatePath("/", "layout");
  return state;
}

/** A text field, or undefined when empty. */
export function text(formData: FormData, name: string): string | undefined {
  const v = formData.get(name);
  return typeof v === "string" && v.trim() !== "" ? v.trim() : undefined;
}
