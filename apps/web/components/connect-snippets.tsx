"use client";
import { useState } from "react";
import { CopyButton } from "./copy-button";

function snippets(slug: string, url: string, key: string) {
  const auth = `Bearer ${key}`;
  const json = (v: unknown) => JSON.stringify(v, null, 2);
  return [
    {
      id: "claude-code",
      title: "Claude Code",
      where: "Run in a terminal:",
      code: `claude mcp add --transport http ${slug} ${url} \\\n  --header "Authorization: ${auth}"`,
    },
    {
      id: "claude-desktop",
      title: "Claude Desktop",
      where: "claude_desktop_config.json (Settings → Developer → Edit config), through mcp-remote:",
      code: json({
        mcpServers: {
          [slug]: {
            command: "npx",
            // mcp-remote expands ${AUTH_HEADER} itself (a space inside args is mangled on some systems).
            // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal placeholder for mcp-remote
            args: ["-y", "mcp-remote", url, "--header", "Authorization:${AUTH_HEADER}"],
            env: { AUTH_HEADER: auth },
          },
        },
      }),
    },
    {
      id: "cursor",
      title: "Cursor",
      where: "~/.cursor/mcp.json (or .cursor/mcp.json in a project):",
      code: json({ mcpServers: { [slug]: { url, headers: { Authorization: auth } } } }),
    },
    {
      id: "vscode",
      title: "VS Code",
      where: ".vscode/mcp.json in your workspace:",
      code: json({ servers: { [slug]: { type: "http", url, headers: { Authorization: auth } } } }),
    },
    {
      id: "mcp-json",
      title: "Project .mcp.json",
      where: ".mcp.json at the root of a project (Claude Code and others read it):",
      code: json({ mcpServers: { [slug]: { type: "http", url, headers: { Authorization: auth } } } }),
    },
    {
      id: "inspector",
      title: "MCP Inspector",
      where: "List the tools this key may call:",
      code: `npx @modelcontextprotocol/inspector --cli ${url} \\\n  --method tools/list --header "Authorization: ${auth}"`,
    },
  ];
}

/** Copy-paste setups for the tenant URL and the key the person pastes (keys are shown only once). */
export function ConnectSnippets({ slug, url }: { slug: string; url: string }) {
  const [key, setKey] = useState("");
  const shown = key.trim() || "mgw_YOUR_KEY";
  return (
    <>
      <div className="field" style={{ marginBottom: 20 }}>
        <label htmlFor="connect-key">API key</label>
        <input
          id="connect-key"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          placeholder="mgw_…"
          autoComplete="off"
          aria-describedby="connect-key-hint"
        />
        <span id="connect-key-hint" className="hint">
          Paste the key you created on the API keys page; it stays in this browser tab. The snippets below
          update.
        </span>
      </div>
      {snippets(slug, url, shown).map((s) => (
        <section key={s.id} className="snippet" aria-labelledby={`snip-${s.id}`}>
          <div className="snippet-head">
            <h3 id={`snip-${s.id}`}>{s.title}</h3>
            <CopyButton value={s.code} label={`Copy ${s.title} setup`} />
          </div>
          <p className="muted" style={{ margin: "0 0 6px" }}>
            {s.where}
          </p>
          <pre>
            <code>{s.code}</code>
          </pre>
        </section>
      ))}
    </>
  );
}
