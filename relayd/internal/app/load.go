package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/claude-relay/claude-relay/relayd/internal/loadgen"
)

// loadCommand is `relayd load`: the project's load tool. It drives a relay
// with real WebSocket clients from this process, so it measures the relay
// as agents see it. Every run is bounded by its counts and --timeout.
func loadCommand(stdout io.Writer) *cli.Command {
	common := []cli.Flag{
		&cli.StringFlag{Name: "url", Value: "ws://127.0.0.1:9999", EnvVars: []string{"RELAY_URL"}, Usage: "relay to load (loopback only unless you own the other end)"},
		&cli.IntFlag{Name: "size", Value: 100, Usage: "message body `BYTES`"},
		&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "give up after this long"},
		&cli.BoolFlag{Name: "legacy", Usage: "speak the older Node relay's protocol on / instead of protocol v1 on /v1/ws"},
		&cli.StringFlag{Name: "peer-url", Usage: "another node of the same cluster (docs/cluster.md): echo's second client and throughput's receiver connect there"},
	}
	token := func() string { return strings.TrimSpace(os.Getenv("RELAY_TOKEN")) }
	target := func(c *cli.Context) loadgen.Target {
		return loadgen.Target{URL: c.String("url"), Token: token(), Legacy: c.Bool("legacy"), PeerURL: c.String("peer-url")}
	}
	return &cli.Command{
		Name:  "load",
		Usage: "measure a running relay: echo round trips, fan-in throughput, idle connections",
		Description: `The relay's default limits are made for agents, not for a load test: start the
relay under test without them, and with room for a receiver that falls behind,
on its default store (the journal in a new data directory) in a scratch one:

   relayd --data-dir "$(mktemp -d)" --client-limit 0 --pair-limit 0 --global-limit 0 \
          --max-conns 0 --max-conns-per-addr 0 --max-queue 1000000

Examples:
   relayd load echo --n 20000                 # A→relay→B→relay→A, one in flight: p50/p99
   relayd load throughput --senders 4 --n 400000
   relayd load idle --n 10000 --hold 10s      # open idle connections; read the relay's RSS meanwhile
   relayd load compare --rounds 5             # the relay against the floor relay, both protocols, medians`,
		Subcommands: []*cli.Command{
			{
				Name:  "echo",
				Usage: "round-trip latency between two clients through the relay",
				Flags: append([]cli.Flag{&cli.IntFlag{Name: "n", Value: 10000, Usage: "round trips"}}, common...),
				Action: func(c *cli.Context) error {
					ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
					defer cancel()
					rtts, err := loadgen.EchoOn(ctx, target(c), c.Int("n"), c.Int("size"))
					if err != nil {
						return cli.Exit(fmt.Sprintf("echo: %v", err), 1)
					}
					fmt.Fprintf(stdout, "echo: %d round trips of %d-byte messages: p50 %s  p90 %s  p99 %s  max %s\n", len(rtts), c.Int("size"),
						micros(loadgen.Percentile(rtts, 50)), micros(loadgen.Percentile(rtts, 90)), micros(loadgen.Percentile(rtts, 99)), micros(loadgen.Percentile(rtts, 100)))
					return nil
				},
			},
			{
				Name:  "throughput",
				Usage: "messages per second from several senders to one receiver",
				Flags: slices.Concat([]cli.Flag{
					&cli.IntFlag{Name: "n", Value: 200000, Usage: "messages in all"},
				}, senderFlags("sender"), common),
				Action: func(c *cli.Context) error {
					ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
					defer cancel()
					res, err := loadgen.ThroughputOn(ctx, target(c), c.Int("senders"), c.Int("n"), c.Int("size"), c.Int("window"))
					if err != nil {
						return cli.Exit(fmt.Sprintf("throughput: %v", err), 1)
					}
					fmt.Fprintf(stdout, "throughput: %d messages of %d bytes from %d senders to 1 receiver in %s: %.0f messages/s\n",
						res.Messages, c.Int("size"), c.Int("senders"), res.Elapsed.Round(time.Millisecond), res.PerSecond())
					return nil
				},
			},
			compareCommand(stdout, common, token),
			{
				Name:  "overload",
				Usage: "senders faster than their receiver: the relay must slow them or answer full, and lose nothing it accepted",
				Flags: slices.Concat([]cli.Flag{
					&cli.DurationFlag{Name: "for", Value: 10 * time.Second, Usage: "how long the senders send"},
					&cli.IntFlag{Name: "rate", Value: 5000, Usage: "messages a second the receiver reads while the senders send"},
				}, senderFlags("sender"), common),
				Action: func(c *cli.Context) error {
					ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
					defer cancel()
					res, err := loadgen.Overload(ctx, loadgen.Target{URL: c.String("url"), Token: token()}, c.Int("senders"), c.Duration("for"), c.Int("size"), c.Int("window"), c.Int("rate"))
					if err != nil {
						return cli.Exit(fmt.Sprintf("overload: %v", err), 1)
					}
					fmt.Fprintf(stdout, "overload: %d senders for %s, receiver at %d/s: %d sent, %d accepted, %d full, %d received in %s\n",
						c.Int("senders"), c.Duration("for"), c.Int("rate"), res.Sent, res.Accepted, res.Full, res.Received, res.Elapsed.Round(time.Millisecond))
					if res.Received < res.Accepted {
						return cli.Exit("overload: accepted messages were lost", 1)
					}
					return nil
				},
			},
			floorCommand(stdout),
			{
				Name:  "idle",
				Usage: "open idle connections and hold them",
				Flags: append([]cli.Flag{
					&cli.IntFlag{Name: "n", Value: 1000, Usage: "connections (mind ulimit -n on both sides)"},
					&cli.DurationFlag{Name: "hold", Value: 5 * time.Second, Usage: "how long to hold them open"},
				}, common...),
				Action: func(c *cli.Context) error {
					ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
					defer cancel()
					start := time.Now()
					cs, err := loadgen.Idle(ctx, c.String("url"), token(), c.Int("n"))
					if err != nil {
						return cli.Exit(fmt.Sprintf("idle: %v", err), 1)
					}
					fmt.Fprintf(stdout, "idle: %d connections open after %s; holding %s\n", len(cs), time.Since(start).Round(time.Millisecond), c.Duration("hold"))
					select {
					case <-time.After(c.Duration("hold")):
					case <-ctx.Done():
					}
					loadgen.CloseAll(cs)
					return nil
				},
			},
		},
	}
}

// senderFlags are --senders and --window, for a run of several senders
// each with unanswered sends (what one of them is, in --window's usage).
func senderFlags(sender string) []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "senders", Value: 4, Usage: "sending clients"},
		&cli.IntFlag{Name: "window", Value: 256, Usage: "unanswered sends each " + sender + " may have"},
	}
}

func micros(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Nanoseconds())/1000, 'f', 0, 64) + "µs"
}
