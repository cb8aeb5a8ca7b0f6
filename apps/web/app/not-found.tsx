import Link from "next/link";

export default function NotFound() {
  return (
    <main id="main" className="center-card">
      <div className="panel">
        <h1>Not found</h1>
        <p>There is nothing here, or it is not yours to see.</p>
        <Link href="/tenants">Back to tenants</Link>
      </div>
    </main>
  );
}
