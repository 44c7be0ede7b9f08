# claude-relay — read top to bottom in one screen.
#   make run    build, then start relayd on 127.0.0.1:9999 with its store in ~/claude-relay/data
#   make test   vet + race tests of all four modules, then relay-mcp/e2e alone (GOWORK=off; what CI runs); ends with every skipped test and why
#   make bench  benchmarks; figures go in docs/benchmarks.md
#   make lint   gofmt + vet
#   make fuzz   each fuzz target for FUZZTIME (20s)
#   make install  go install both binaries into $(go env GOPATH)/bin
#   make check-modules  each module builds alone and go installs from a module proxy (~2 min; CI runs it)

SHELL    := bash
MODULES  := protocol internal relayd relay-mcp
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
DATE     ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
STAMP     = -X github.com/claude-relay/claude-relay/internal/buildinfo.Version=$(VERSION) \
  -X github.com/claude-relay/claude-relay/internal/buildinfo.Commit=$(COMMIT) \
  -X github.com/claude-relay/claude-relay/internal/buildinfo.Date=$(DATE)
LDFLAGS  := -s -w $(STAMP)
PKGS     := ./protocol/... ./internal/... ./relayd/... ./relay-mcp/...
# The end-to-end tests of relay-mcp against the real relayd: a test-only
# module (it requires relayd, which relay-mcp does not), run on its own.
E2E      := relay-mcp/e2e

.PHONY: build run test bench lint install fuzz clean check-modules

# -v lists each package as it compiles: the first build downloads the modules
# and compiles SQLite (a few minutes), later ones print nothing.
build:
	@echo "building bin/relayd and bin/relay-mcp (the first build takes a few minutes; packages are listed as they compile)"
	go build -v -ldflags '$(LDFLAGS)' -o bin/relayd ./relayd
	go build -v -ldflags '$(LDFLAGS)' -o bin/relay-mcp ./relay-mcp

run: build
	./bin/relayd

# testsummary prints a line per package, failed tests whole, then every
# skipped test with its reason and "N passed, N failed, N skipped".
# The e2e module runs with GOWORK=off: its go.mod alone must build it.
test: lint
	set -o pipefail; { go test -race -count=1 -timeout 15m -json $(PKGS); s=$$?; \
	  cd $(E2E) && GOWORK=off go test -race -count=1 -timeout 15m -json ./... || s=1; exit $$s; } 2>&1 | go run scripts/testsummary.go

bench:
	go test -run '^$$' -bench . -benchmem -count 5 -timeout 30m ./protocol/... ./relayd/... | tee bench.out

lint:
	@test -z "$$(gofmt -l $(MODULES))" || { echo "gofmt needed:"; gofmt -l $(MODULES); exit 1; }
	go vet $(PKGS)
	GOOS=darwin go vet $(PKGS)  # macOS, where relayd runs under launchd: its own files (room_darwin.go) must build
	cd $(E2E) && GOWORK=off go vet ./...  # fails if a new requirement of relayd or relay-mcp is missing here: GOWORK=off go mod tidy

FUZZTIME ?= 20s
fuzz:  # every decoder of outside input, one after another
	go test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./protocol
	go test -run '^$$' -fuzz FuzzFastDecode -fuzztime $(FUZZTIME) ./protocol
	go test -run '^$$' -fuzz FuzzFastEncode -fuzztime $(FUZZTIME) ./protocol
	go test -run '^$$' -fuzz FuzzAppendJSONString -fuzztime $(FUZZTIME) ./protocol
	go test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./relayd/internal/legacy
	go test -run '^$$' -fuzz FuzzDecodeMessage -fuzztime $(FUZZTIME) ./relayd/internal/legacy
	go test -run '^$$' -fuzz FuzzAppendMessage -fuzztime $(FUZZTIME) ./relayd/internal/legacy
	go test -run '^$$' -fuzz FuzzParseTokens -fuzztime $(FUZZTIME) ./relayd/internal/auth
	go test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./relay-mcp/internal/registry
	go test -run '^$$' -fuzz FuzzParseURL -fuzztime $(FUZZTIME) ./relay-mcp/internal/link
	go test -run '^$$' -fuzz FuzzLog -fuzztime $(FUZZTIME) ./relay-mcp/internal/inbox
	go test -run '^$$' -fuzz FuzzJournalReplay -fuzztime $(FUZZTIME) ./relayd/internal/store
	go test -run '^$$' -fuzz FuzzFastRecordDecode -fuzztime $(FUZZTIME) ./relayd/internal/store

install:
	go install -ldflags '$(LDFLAGS)' ./relayd ./relay-mcp

check-modules:
	scripts/check-modules.sh

clean:
	rm -rf bin bench.out
