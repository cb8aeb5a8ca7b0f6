"use client";
import { createContext, type ReactNode, useContext } from "react";

const CsrfContext = createContext("");

/** Hands the session's CSRF token to every form below it (rendered as a hidden field). */
export function CsrfProvider({ token, children }: { token: string; children: ReactNode }) {
  return <CsrfContext.Provider value={token}>{children}</CsrfContext.Provider>;
}

export function useCsrf(): string {
  return useContext(CsrfContext);
}
