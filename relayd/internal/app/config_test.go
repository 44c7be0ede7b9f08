package app

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/daemon"
)

// configOf returns the Config relayd's flags make of args.
func configOf(t *testing.T, args ...string) daemon.Config {
	t.Helper()
	cfg, err := ConfigFromArgs(args)
	if err != nil {
		t.Fatalf("relayd %s: %v", strings.Join(args, " "), err)
	}
	return cfg
}

// relayd with no flags and no environment serves DefaultConfig: the flags'
// defaults are DefaultConfig's.
func TestDefaultConfigIsTheFlagsDefault(t *testing.T) {
	for _, env := range []string{"RELAY_TOKEN", "RELAY_LISTEN", "RELAY_PORT", "RELAY_STORE", "RELAY_DATA_DIR", "RELAY_RETENTION", "RELAY_PAIR_LIMIT"} {
		t.Setenv(env, "") // restored after the test
		os.Unsetenv(env)
	}
	if got, want := configOf(t), daemon.DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("relayd without flags serves\n%+v\nDefaultConfig is\n%+v", got, want)
	}
	got := configOf(t, "--port", "7777", "--store", "memory", "--pair-limit", "0", "--allow-host", "relay.lan")
	if got.Listen != "127.0.0.1:7777" || got.Store != "memory" || !got.Limits.Pair.Unlimited() || !reflect.DeepEqual(got.AllowHosts, []string{"relay.lan"}) {
		t.Errorf("flags filled %+v", got)
	}
}

// A test serves a daemon.Config with daemon.Run, as main does: Ready gives the address,
// a client says hello, and cancelling the context shuts relayd down.
func TestRunConfig(t *testing.T) {
	cfg := daemon.DefaultConfig()
	cfg.Listen, cfg.Store, cfg.Token = "127.0.0.1:0", "memory", ""
	addr, logs, stop := runInProcess(t, cfg)

	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	ws, _, err := websocket.Dial(dctx, "ws://"+addr+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	b, _ := protocol.Encode(&protocol.Hello{Proto: protocol.Version, ClientID: "CFG-1"})
	if err := ws.Write(dctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	_, data, err := ws.Read(dctx)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := protocol.Decode(data); err != nil || f.Type() != protocol.TypeWelcome {
		t.Fatalf("answer to hello: %s (%v)", data, err)
	}

	if code := stop(); code != 0 {
		t.Fatalf("Run after cancel: exit %d\n%s", code, logs.String())
	}
}
