#!/usr/bin/env bash
# The README and docs/install.md, followed literally on a fresh clone with a
# fresh HOME, each output compared with what the documents say it is:
#
#   make install                      (docs/install.md: what works today)
#   relayd version                    relayd VERSION (commit C, built D, goX, protocol v1)
#   claude mcp add … / relay-mcp install claude --write   (the MCP entry)
#   relay-mcp install claude --hooks --write
#   relay-mcp chat --id CC-2          terminal 1 — relay-mcp starts relayd itself
#   relay-mcp send CC-2 "…"           the message id and CC-2=delivered
#   relay-mcp peers                   who is online
#   curl -s …/healthz                 {"status":"ok",…,"peers_online":1,…}
#   relay-mcp doctor                  all checks passed, the entry and the hooks found
#
# It uses a free loopback port instead of 9999 (RELAY_URL), so that it can
# run beside a relay already on 9999; everything else is the documents'.
# The Go build and module caches are kept (a fresh HOME would otherwise
# rebuild SQLite for minutes). Run by TestREADMEWalkthrough; by hand:
#
#   scripts/readme-walkthrough.sh          (tests the committed HEAD)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

tmp=$(mktemp -d)
relayd_pid=
chat_pid=
cleanup() {
  [ -n "$chat_pid" ] && kill "$chat_pid" 2>/dev/null || true
  if [ -f "$tmp/home/claude-relay/relayd.pid" ]; then
    kill "$(cat "$tmp/home/claude-relay/relayd.pid")" 2>/dev/null || true
  fi
  [ -n "$relayd_pid" ] && kill "$relayd_pid" 2>/dev/null || true
  chmod -R u+w "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
step() { echo "== $*"; }
fail() { echo "readme-walkthrough: $*" >&2; exit 1; }
# until CMD… : retry for up to 20 s (the relay starting, a message arriving)
until_ok() {
  local deadline=$((SECONDS + 20))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

export GOCACHE=$(go env GOCACHE) GOMODCACHE=$(go env GOMODCACHE) GOPATH=$(go env GOPATH)
export GOFLAGS=${GOFLAGS:-} GOTOOLCHAIN=${GOTOOLCHAIN:-local}
export HOME=$tmp/home GOBIN=$tmp/bin PATH=$tmp/bin:$PATH
mkdir -p "$HOME"
unset RELAY_HOME RELAY_URL RELAY_TOKEN RELAY_TOKEN_FILE RELAY_CLIENT_ID CLAUDE_RELAY_SESSION_ID RELAY_AUTOSTART CLAUDE_CONFIG_DIR CODEX_HOME
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
  echo $((20000 + RANDOM % 20000)))
export RELAY_URL=ws://127.0.0.1:$port

step "git clone (a fresh clone of HEAD)"
git clone -q "$root" "$tmp/claude-relay"
cd "$tmp/claude-relay"

step "make install"
make install >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "make install failed"; }
for b in relayd relay-mcp; do
  [ -x "$GOBIN/$b" ] || fail "make install did not put $b in GOBIN"
done

step "relayd version"
v=$(relayd version)
echo "$v"
[[ $v =~ ^relayd\ [^\ ]+\ \(commit\ [0-9a-f]+,\ built\ [0-9T:-]+Z,\ go[0-9.]+,\ protocol\ v1\)$ ]] ||
  fail "relayd version says '$v'; docs/install.md shows 'relayd VERSION (commit C, built DATE, goX, protocol v1)'"

step "the MCP entry"
if command -v claude >/dev/null; then
  claude mcp add -s user relay -- relay-mcp
else
  echo "(no claude CLI here: relay-mcp install claude --write writes the same entry)"
  relay-mcp install claude --write --command relay-mcp
fi
step "relay-mcp install claude --hooks --write"
relay-mcp install claude --hooks --write >/dev/null
grep -q "relay-mcp hook claude-code" "$HOME/.claude/settings.json" || fail "the hooks are not in ~/.claude/settings.json"

step "relay-mcp chat --id CC-2   (no relayd running: relay-mcp starts it)"
mkfifo "$tmp/chat.in"
relay-mcp chat --id CC-2 <"$tmp/chat.in" >"$tmp/chat.out" 2>"$tmp/chat.err" &
chat_pid=$!
exec 3>"$tmp/chat.in" # keeps chat's stdin open
until_ok grep -q "CC-2" "$tmp/chat.out" || { cat "$tmp/chat.out" "$tmp/chat.err"; fail "chat did not connect"; }
[ -f "$HOME/claude-relay/relayd.pid" ] || fail "no relayd.pid: relay-mcp did not start relayd"
relayd_pid=$(cat "$HOME/claude-relay/relayd.pid")
grep -q "relayd listening" "$HOME/claude-relay/logs/relayd.log" || fail "relayd's log is not in ~/claude-relay/logs/relayd.log"
[ -e "$HOME/claude-relay/data/relay.journal" ] || fail "relayd's store (a new data directory: the journal, relay.journal) is not in ~/claude-relay/data"

step 'relay-mcp send CC-2 "the bug is in auth.js line 42"'
out=$(relay-mcp send CC-2 "the bug is in auth.js line 42")
echo "$out"
[[ $out =~ ^[0-9a-f-]{36}\ CC-2=delivered$ ]] || fail "send printed '$out'; the README says: the message id and CC-2=delivered"
until_ok grep -q "the bug is in auth.js line 42" "$tmp/chat.out" || { cat "$tmp/chat.out"; fail "chat did not print the message"; }

step "relay-mcp peers"
out=$(relay-mcp peers)
echo "$out"
grep -q "^CC-2 " <<<"$out" || fail "peers does not list CC-2"

step "curl -s 127.0.0.1:$port/healthz"
out=$(curl -s "127.0.0.1:$port/healthz")
echo "$out"
[[ $out == '{"status":"ok"'*'"peers_online":1'* ]] || fail "healthz says '$out'; the README shows {\"status\":\"ok\",…,\"peers_online\":1,…}"

step "relay-mcp doctor"
out=$(relay-mcp doctor) || { echo "$out"; fail "doctor found problems"; }
echo "$out"
grep -q "^all checks passed" <<<"$out" || fail "doctor did not pass"
grep -q "^OK    agents: Claude Code (~/.claude.json) starts relay-mcp" <<<"$out" || fail "doctor does not see the MCP entry"
grep -q "^OK    hooks: relay-mcp's Claude Code hooks are installed" <<<"$out" || fail "doctor does not see the hooks"
grep -q "^OK    autostart: on .*the one it started runs as pid $relayd_pid" <<<"$out" || fail "doctor does not name the relayd relay-mcp started"

echo '/quit' >&3
exec 3>&-
wait "$chat_pid" || fail "chat did not end cleanly on /quit"
chat_pid=
echo "README walkthrough: every step as the documents say"
