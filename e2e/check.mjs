// Spawns relay-mcp exactly as Claude Code does (command + env over stdio,
// through @modelcontextprotocol/sdk's StdioClientTransport), lists the tools,
// and has two sessions exchange a message through the relay.
//
//   node check.mjs /path/to/relay-mcp ws://127.0.0.1:PORT
// Prints one JSON line with the results; exits non-zero on failure.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [bin, relayURL] = process.argv.slice(2);
if (!bin || !relayURL) {
  console.error("usage: node check.mjs RELAY_MCP_BINARY RELAY_URL");
  process.exit(2);
}
const home = mkdtempSync(join(tmpdir(), "relay-e2e-"));

async function spawn(id) {
  const transport = new StdioClientTransport({
    command: bin,
    args: [],
    env: { ...process.env, RELAY_HOME: home, RELAY_URL: relayURL, CLAUDE_RELAY_SESSION_ID: id },
    stderr: "inherit",
  });
  const client = new Client({ name: "claude-code-e2e", version: "1.0.0" });
  const t0 = performance.now();
  await client.connect(transport);
  const { tools } = await client.listTools();
  return { client, tools, ms: performance.now() - t0 };
}

function text(res) {
  return res.content.filter((c) => c.type === "text").map((c) => c.text).join("");
}

async function waitConnected(client) {
  for (let i = 0; i < 200; i++) {
    const res = await client.callTool({ name: "relay_status", arguments: {} });
    if (text(res).startsWith("connected ")) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("relay-mcp did not connect");
}

const a = await spawn("TS-A");
const b = await spawn("TS-B");
const names = a.tools.map((t) => t.name).sort();
const want = ["relay_clear_history", "relay_peers", "relay_receive", "relay_send", "relay_sessions", "relay_status"];
if (JSON.stringify(names) !== JSON.stringify(want)) throw new Error("tools: " + names.join(","));
await waitConnected(a.client);
await waitConnected(b.client);

const waiting = b.client.callTool({ name: "relay_receive", arguments: { wait_seconds: 20 } });
const sent = await a.client.callTool({ name: "relay_send", arguments: { to: "TS-B", message: "hello from TypeScript" } });
if (!text(sent).includes("TS-B: delivered")) throw new Error("send: " + text(sent));
const got = await waiting;
if (!text(got).includes("hello from TypeScript")) throw new Error("receive: " + text(got));

await a.client.close();
await b.client.close();
console.log(JSON.stringify({ ok: true, tools: names.length, spawn_to_tools_ms: Math.round(a.ms) }));
