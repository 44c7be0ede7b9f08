package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/internal/testkit"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// A Config that would expose relayd without a token, or its profiler
// beyond loopback, is refused by Run itself, not only by the flags: a
// *ConfigError, which relayd exits 2 on, before anything listens.
func TestRunRefusesExposure(t *testing.T) {
	for _, c := range []struct {
		name, listen, debug, want string
	}{
		{"open listener", "0.0.0.0:0", "", "without a token"},
		{"open profiler", "127.0.0.1:0", "0.0.0.0:0", "loopback only"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen, cfg.Store, cfg.Token, cfg.DebugAddr = c.listen, "memory", "", c.debug
			err := Run(context.Background(), cfg, io.Discard)
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Run = %v, want a *ConfigError saying %q", err, c.want)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	if IsLoopback("0.0.0.0:9999") || IsLoopback("192.0.2.1:1") || !IsLoopback("127.0.0.1:1") || !IsLoopback("[::1]:1") || !IsLoopback("localhost:1") {
		t.Fatal("IsLoopback misjudges an address")
	}
}

// A data directory that holds one durable store's file is refused to the
// other store, with the way out named: relayd would start empty beside the
// old mail, and the agents' queued messages would seem lost.
func TestRunRefusesTheOtherStoresDir(t *testing.T) {
	for _, c := range []struct{ kind, file, want string }{
		{"journal", "relay.db", "start with --store sqlite"},
		{"sqlite", "relay.journal", "start with --store journal"},
	} {
		t.Run(c.kind, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, c.file), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			cfg.Listen, cfg.Store, cfg.DataDir = "127.0.0.1:0", c.kind, dir
			err := Run(context.Background(), cfg, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.file) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Run(--store %s) on a dir with %s = %v, want a refusal saying %q", c.kind, c.file, err, c.want)
			}
		})
	}
}

// --store auto, the default, opens the durable store a data directory
// holds — an upgraded relayd keeps its SQLite mail — and the journal store
// in a new directory.
func TestRunAutoStore(t *testing.T) {
	for _, c := range []struct {
		name    string
		prepare func(t *testing.T, dir string)
		want    string // the store relayd logs it serves from
		file    string // the file it must leave in the directory
	}{
		{"new directory", func(*testing.T, string) {}, "journal", store.JournalFile},
		{"SQLite directory", func(t *testing.T, dir string) {
			st, err := store.Open(context.Background(), dir, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
		}, "sqlite", store.FileName},
		{"journal directory", func(t *testing.T, dir string) {
			st, err := store.OpenJournal(context.Background(), dir, store.JournalOptions{})
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
		}, "journal", store.JournalFile},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			c.prepare(t, dir)
			var log testkit.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			cfg := DefaultConfig()
			cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
			cfg.Ready = func(string) { cancel() }
			if err := Run(ctx, cfg, &log); err != nil {
				t.Fatalf("Run(--store auto) on a %s: %v\n%s", c.name, err, log.String())
			}
			if !strings.Contains(log.String(), "store="+c.want+" ") {
				t.Errorf("on a %s relayd served from another store than %s:\n%s", c.name, c.want, log.String())
			}
			if _, err := os.Stat(filepath.Join(dir, c.file)); err != nil {
				t.Errorf("on a %s relayd left no %s: %v", c.name, c.file, err)
			}
			other := store.FileName
			if c.file == other {
				other = store.JournalFile
			}
			if _, err := os.Stat(filepath.Join(dir, other)); err == nil {
				t.Errorf("on a %s relayd made %s beside %s", c.name, other, c.file)
			}
		})
	}
}

// The kill -9 tests' fault injection is said in the log when it is set,
// and a value that is not a duration stops relayd with the variable named.
func TestFaultJournalWriteDelay(t *testing.T) {
	t.Setenv(FaultJournalWriteDelayEnv, "soon")
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if _, _, _, err := openStore(context.Background(), "journal", t.TempDir(), log); err == nil || !strings.Contains(err.Error(), FaultJournalWriteDelayEnv) {
		t.Fatalf("openStore with %s=soon: %v; want an error naming it", FaultJournalWriteDelayEnv, err)
	}
	t.Setenv(FaultJournalWriteDelayEnv, "1ms")
	st, _, _, err := openStore(context.Background(), "journal", t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if !strings.Contains(logs.String(), "fault injection") {
		t.Errorf("the log does not say the journal's writes wait:\n%s", logs.String())
	}
}
