export default function Loading() {
  return (
    <main id="main">
      <p role="status">Loading…</p>
    </main>
  );
}
