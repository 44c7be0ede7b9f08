package loadgen_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/legacy"
	"github.com/claude-relay/claude-relay/relayd/internal/loadgen"
	"github.com/claude-relay/claude-relay/relayd/internal/server"
	"github.com/claude-relay/claude-relay/relayd/internal/wstest"
)

func startRelay(t *testing.T, maxQueue int) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := &server.Server{Logger: log, Hub: hub.New(hub.Options{Logger: log, MaxQueue: maxQueue}),
		Legacy: func() server.Codec { return legacy.New(protocol.Limits{}) }}
	return wstest.URL(wstest.Serve(t, srv.Handler(), srv.Shutdown))
}

func TestThroughputCountsEveryMessage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := loadgen.Throughput(ctx, startRelay(t, 0), "", 2, 2000, 100, 64)
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != 2000 {
		t.Fatalf("received %d, want 2000", res.Messages)
	}
}

// A relay that refuses messages because the receiver's mailbox is full
// (the receiver acks every 256, the relay holds 10) ends the run at once
// with the fix, instead of a receiver waiting for messages never stored.
func TestThroughputMailboxFullIsAnError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := loadgen.Throughput(ctx, startRelay(t, 10), "", 1, 2000, 100, 64)
	if err == nil || !strings.Contains(err.Error(), "--max-queue") {
		t.Fatalf("err = %v, want one naming --max-queue", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the run waited for its deadline")
	}
	t.Log(err)
}

func startFloor(t *testing.T) string {
	t.Helper()
	hts := httptest.NewServer(loadgen.Floor())
	t.Cleanup(hts.Close)
	return "ws" + strings.TrimPrefix(hts.URL, "http")
}

// The load client measures the relay and the floor relay on both protocols:
// every round trip comes back and every message of a fan-in arrives.
func TestBothProtocolsOnRelayAndFloor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, relay := range []struct{ name, url string }{{"relayd", startRelay(t, 0)}, {"floor", startFloor(t)}} {
		for _, legacy := range []bool{false, true} {
			tg := loadgen.Target{URL: relay.url, Legacy: legacy}
			rtts, err := loadgen.EchoOn(ctx, tg, 200, 100)
			if err != nil || len(rtts) != 200 {
				t.Fatalf("%s legacy=%v: echo: %d round trips, %v", relay.name, legacy, len(rtts), err)
			}
			res, err := loadgen.ThroughputOn(ctx, tg, 2, 2000, 100, 64)
			if err != nil || res.Messages != 2000 {
				t.Fatalf("%s legacy=%v: throughput: %d messages, %v", relay.name, legacy, res.Messages, err)
			}
		}
	}
}

// Under overload every accepted message reaches the slow receiver, and a
// full mailbox is answered full, not dropped.
func TestOverloadLosesNothingAccepted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := loadgen.Overload(ctx, loadgen.Target{URL: startRelay(t, 300)}, 2, time.Second, 100, 64, 500)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Received != res.Accepted || res.Accepted == 0 || res.Sent != res.Accepted+res.Full {
		t.Fatalf("%+v: want every send answered and every accepted message received", res)
	}
	if res.Full == 0 {
		t.Errorf("%+v: a receiver at 500/s behind a mailbox of 300 never made a send full", res)
	}
}
