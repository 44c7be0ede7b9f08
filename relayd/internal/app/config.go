package app

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/claude-relay/claude-relay/relayd/internal/auth"
	"github.com/claude-relay/claude-relay/relayd/internal/daemon"
	"github.com/claude-relay/claude-relay/relayd/internal/ratelimit"
)

// ConfigFromArgs is the Config `relayd ARGS...` serves: the serve flags
// in args (without the program name) and their environment variables,
// resolved as Main resolves them. Package relaytest starts relays this way.
func ConfigFromArgs(args []string) (daemon.Config, error) {
	a := New(io.Discard, io.Discard)
	var cfg daemon.Config
	var err error
	a.Action = func(c *cli.Context) error { cfg, err = configFrom(c); return err }
	if rerr := a.Run(append([]string{"relayd"}, args...)); rerr != nil {
		return daemon.Config{}, rerr
	}
	return cfg, err
}

// configFrom fills a daemon.Config from the serve flags (each also read from its
// environment variable). Errors are usage errors (exit 2) naming the fix.
func configFrom(c *cli.Context) (daemon.Config, error) {
	usage := func(err error) (daemon.Config, error) { return daemon.Config{}, cli.Exit(err.Error(), 2) }
	if c.Args().Len() > 0 {
		return usage(fmt.Errorf("unknown command %q; run relayd --help", c.Args().First()))
	}
	cfg := daemon.Config{
		Store: c.String("store"), DataDir: c.String("data-dir"), Retention: c.Duration("retention"), MaxQueue: c.Int("max-queue"), MaxStoreMB: c.Int("max-store-mb"),
		Insecure: c.Bool("insecure"), AllowOrigins: c.StringSlice("allow-origin"),
		MaxConns: c.Int("max-conns"), MaxConnsPerAddr: c.Int("max-conns-per-addr"), IdleTimeout: c.Duration("idle-timeout"),
		MaxBody: c.Int("max-body"), PingInterval: c.Duration("ping-interval"), HelloTimeout: c.Duration("hello-timeout"),
		LogLevel: c.String("log-level"), LogFormat: c.String("log-format"), DebugAddr: c.String("debug-addr"),
	}
	var err error
	if cfg.Listen, err = listenAddr(c.String("listen"), c.Int("port")); err != nil {
		return usage(err)
	}
	if cfg.Token, err = readToken(c); err != nil {
		return usage(err)
	}
	if p := c.String("tokens-file"); p != "" {
		if cfg.Tokens, err = auth.LoadTokens(p); err != nil {
			return usage(err)
		}
	}
	for _, l := range []struct {
		flag string
		to   *ratelimit.Rate
	}{{"client-limit", &cfg.Limits.Client}, {"pair-limit", &cfg.Limits.Pair}, {"loop-warn", &cfg.Limits.Loop}, {"global-limit", &cfg.Limits.Global}, {"new-id-limit", &cfg.Limits.NewIDs}, {"auth-fail-limit", &cfg.AuthFail}} {
		if *l.to, err = ratelimit.ParseRate(c.String(l.flag)); err != nil {
			return usage(fmt.Errorf("--%s: %v", l.flag, err))
		}
	}
	for _, h := range c.StringSlice("allow-host") {
		if _, perr := path.Match(h, ""); perr != nil || h == "" || strings.ContainsAny(h, ":/") {
			return usage(fmt.Errorf("--allow-host %q: give a host name or pattern without scheme or port, e.g. relay.example.com or *.lan", h))
		}
		cfg.AllowHosts = append(cfg.AllowHosts, h)
	}
	if cfg.TLS, err = loadTLS(c.String("tls-cert"), c.String("tls-key")); err != nil {
		return usage(err)
	}
	if cfg.Cluster, err = clusterConfigFrom(c); err != nil {
		return usage(err)
	}
	return cfg, nil
}

// exitOf turns what daemon.Run returned into relayd's exit: 2 for a Config
// that must not run, 1 for what failed at start.
func exitOf(err error) error {
	var ce *daemon.ConfigError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return cli.Exit(err.Error(), 2)
	}
	return cli.Exit(err.Error(), 1)
}
