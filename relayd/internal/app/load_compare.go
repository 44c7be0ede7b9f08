package app

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/claude-relay/claude-relay/relayd/internal/loadgen"
)

// floorCommand is `relayd load floor`: the floor relay (loadgen.Floor) in
// a process of its own, so it is measured as relayd is.
func floorCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "floor",
		Usage: "serve the floor relay: no store, no checks, the least a relay can do (a benchmark helper)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:0", Usage: "loopback ADDR to listen on"},
		},
		Action: func(c *cli.Context) error {
			ln, err := net.Listen("tcp", c.String("listen"))
			if err != nil {
				return cli.Exit(fmt.Sprintf("floor: %v", err), 1)
			}
			fmt.Fprintf(stdout, "floor relay listening on ws://%s\n", ln.Addr())
			srv := &http.Server{Handler: loadgen.Floor(), ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-c.Context.Done()
				srv.Close()
			}()
			if err := srv.Serve(ln); err != nil && c.Context.Err() == nil {
				return cli.Exit(fmt.Sprintf("floor: %v", err), 1)
			}
			return nil
		},
	}
}

// compareCommand is `relayd load compare`: echo and 4→1 throughput against
// the relay at --url and against a floor relay started for the run, on both
// protocols, the two relays taking turns round after round; it prints the
// medians and the relay's ratio to the floor.
func compareCommand(stdout io.Writer, common []cli.Flag, token func() string) *cli.Command {
	return &cli.Command{
		Name:  "compare",
		Usage: "measure the relay and the floor relay in one run, on protocol v1 and the older protocol",
		Flags: slices.Concat([]cli.Flag{
			&cli.IntFlag{Name: "rounds", Value: 3, Usage: "rounds; medians are quoted"},
			&cli.IntFlag{Name: "echo-n", Value: 3000, Usage: "round trips per echo run"},
			&cli.IntFlag{Name: "n", Value: 100000, Usage: "messages per throughput run"},
		}, senderFlags("protocol v1 sender"), common),
		Action: func(c *cli.Context) error {
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
			defer cancel()
			floorURL, stop, err := startFloor(ctx)
			if err != nil {
				return cli.Exit(fmt.Sprintf("compare: %v", err), 1)
			}
			defer stop()
			type figures struct{ p50, p99, rate []float64 }
			results := map[string]*figures{}
			key := func(relay string, legacy bool) string {
				if legacy {
					return relay + " /"
				}
				return relay + " /v1/ws"
			}
			for round := 0; round < c.Int("rounds"); round++ {
				for _, legacy := range []bool{false, true} {
					for _, relay := range []string{"relayd", "floor"} {
						t := loadgen.Target{URL: c.String("url"), Token: token(), Legacy: legacy}
						if relay == "floor" {
							t = loadgen.Target{URL: floorURL, Legacy: legacy}
						}
						k := key(relay, legacy)
						if results[k] == nil {
							results[k] = &figures{}
						}
						rtts, err := loadgen.EchoOn(ctx, t, c.Int("echo-n"), c.Int("size"))
						if err != nil {
							return cli.Exit(fmt.Sprintf("compare: echo on %s: %v", k, err), 1)
						}
						res, err := loadgen.ThroughputOn(ctx, t, c.Int("senders"), c.Int("n"), c.Int("size"), c.Int("window"))
						if err != nil {
							return cli.Exit(fmt.Sprintf("compare: throughput on %s: %v", k, err), 1)
						}
						f := results[k]
						f.p50 = append(f.p50, us(loadgen.Percentile(rtts, 50)))
						f.p99 = append(f.p99, us(loadgen.Percentile(rtts, 99)))
						f.rate = append(f.rate, res.PerSecond())
					}
				}
			}
			fmt.Fprintf(stdout, "medians of %d rounds; %d-byte messages; echo %d round trips; throughput %d messages from %d senders to 1 receiver\n",
				c.Int("rounds"), c.Int("size"), c.Int("echo-n"), c.Int("n"), c.Int("senders"))
			fmt.Fprintf(stdout, "%-16s %10s %10s %14s\n", "relay", "echo p50", "echo p99", "throughput")
			for _, legacy := range []bool{false, true} {
				r, f := results[key("relayd", legacy)], results[key("floor", legacy)]
				for _, row := range []struct {
					name string
					f    *figures
				}{{key("relayd", legacy), r}, {key("floor", legacy), f}} {
					fmt.Fprintf(stdout, "%-16s %8.0fµs %8.0fµs %9.0f msg/s\n", row.name, median(row.f.p50), median(row.f.p99), median(row.f.rate))
				}
				fmt.Fprintf(stdout, "%-16s %9.2f× %9.2f× %13.2f×\n", "relayd/floor", median(r.p50)/median(f.p50), median(r.p99)/median(f.p99), median(r.rate)/median(f.rate))
			}
			return nil
		},
	}
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// startFloor runs `relayd load floor` (this executable) on a loopback port
// and returns its URL and a stop function that kills it.
func startFloor(ctx context.Context) (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(exe, "load", "floor", "--listen", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start the floor relay: %w", err)
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		io.Copy(io.Discard, out)
	}()
	select {
	case s := <-line:
		_, url, ok := strings.Cut(strings.TrimSpace(s), " on ")
		if !ok {
			stop()
			return "", nil, fmt.Errorf("the floor relay said %q", s)
		}
		return url, stop, nil
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
	}
	stop()
	return "", nil, fmt.Errorf("the floor relay did not start within 10s")
}
