"use client";

export default function ErrorPage({
  error,
  reset,
}: {
  error: Error & { digest?: string };
  reset: () => void;
}) {
  return (
    <main id="main">
      <div role="alert" className="alert error">
        <h1>Something went wrong</h1>
        <p>{error.message || "The API could not answer."}</p>
        {error.digest ? <p className="muted">Reference: {error.digest}</p> : null}
      </div>
      <p>
        <button type="button" className="button secondary" onClick={reset}>
          Try again
        </button>
      </p>
    </main>
  );
}
