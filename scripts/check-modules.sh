#!/usr/bin/env bash
# Proves that each module builds on its own, as `go install MODULE@VERSION`
# builds it from a module proxy: no go.work, no replace directive, the
# tagged protocol version that go.mod requires, complete go.mod and go.sum.
#
# The repository is not published, so the script plays the proxy: it writes
# protocol and internal (at the versions relayd and relay-mcp require) and both commands
# (at $CHECK_VERSION) into a GOPROXY=file:// tree, then, with GOWORK=off and
# an empty module cache, builds and vets each module alone and runs
# `go install …/relayd@VERSION` and `…/relay-mcp@VERSION` from that proxy.
# Other modules come from the local download cache or the usual proxy.
#
#   scripts/check-modules.sh        (make check-modules)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
repo=github.com/claude-relay/claude-relay
version=${CHECK_VERSION:-v0.1.0-modcheck}

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "check-modules: $*" >&2; exit 1; }

for m in protocol internal relayd relay-mcp; do
  if grep -nE '^[[:space:]]*replace([[:space:]]|\()' "$m/go.mod"; then
    fail "$m/go.mod has a replace directive: a released module cannot use it (go install refuses it); point the version in go.work instead"
  fi
done
# required MODULE GOMOD: the version of $repo/MODULE that GOMOD requires.
required() { awk -v p="$repo/$1" '$1==p {print $2; exit} $1=="require" && $2==p {print $3; exit}' "$2"; }
proxy=$tmp/proxy
for lib in protocol internal; do
  v=$(required $lib relayd/go.mod)
  [ -n "$v" ] || fail "relayd/go.mod does not require $repo/$lib"
  [ "$v" = "$(required $lib relay-mcp/go.mod)" ] || fail "relayd requires $lib $v but relay-mcp requires $(required $lib relay-mcp/go.mod): require the same tagged release"
  go run scripts/modproxy.go "$proxy" $lib "$v"
done
pv=$(required protocol relayd/go.mod)
go run scripts/modproxy.go "$proxy" relayd "$version"
go run scripts/modproxy.go "$proxy" relay-mcp "$version"

cache=$(go env GOMODCACHE)/cache/download
export GOWORK=off GOFLAGS= GONOSUMDB="$repo/*" GOMODCACHE="$tmp/modcache" GOBIN="$tmp/bin"
export GOPROXY="file://$proxy,file://$cache,$(go env GOPROXY)"

for m in relayd relay-mcp; do
  # A copy of go.mod/go.sum takes what the build would add: the sums of
  # protocol and internal (they have no published hash yet) and nothing else.
  cp "$m/go.mod" "$tmp/$m.mod"
  grep -v "^$repo/\(protocol\|internal\) " "$m/go.sum" > "$tmp/$m.sum" || true
  (cd "$m" && go build -mod=mod -modfile="$tmp/$m.mod" -o /dev/null ./... && go vet -mod=mod -modfile="$tmp/$m.mod" ./...) ||
    fail "$m does not build alone (GOWORK=off)"
  diff -u "$m/go.mod" "$tmp/$m.mod" || fail "$m/go.mod is incomplete: run (cd $m && GOWORK=off go mod tidy) with protocol and internal reachable"
  if extra=$(grep -v "^$repo/\(protocol\|internal\) " "$tmp/$m.sum" | diff - <(grep -v "^$repo/\(protocol\|internal\) " "$m/go.sum") | grep '^<'); then
    fail "$m/go.sum lacks entries a build alone needs:
$extra"
  fi
  echo "ok   $m builds and vets alone against protocol $pv ($(grep -c . "$m/go.sum") go.sum lines)"
done

(cd "$tmp" && go install "$repo/relayd@$version" && go install "$repo/relay-mcp@$version") ||
  fail "go install MODULE@$version failed"
for b in relayd relay-mcp; do
  out=$("$tmp/bin/$b" version)
  case "$out" in
    "$b $version "*) echo "ok   go install $repo/$b@$version → $out" ;;
    *) fail "$b version after go install says: $out (want $b $version …)" ;;
  esac
done
