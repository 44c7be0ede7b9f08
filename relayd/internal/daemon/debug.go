package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// serveDebug serves Go's profiler (net/http/pprof) on addr, a loopback
// address of its own: profiles and traces show what the relay spends its
// time on, and a heap profile holds pieces of message bodies, so it is
// never on the relay's own port and never beyond this machine. It returns
// the address it listens on and a stop that closes it.
func serveDebug(addr string, log *slog.Logger) (string, func(), error) {
	if !IsLoopback(addr) {
		return "", nil, &ConfigError{fmt.Sprintf("--debug-addr %s: the profiler listens on loopback only (its heap profiles hold message text); use 127.0.0.1:PORT and an SSH tunnel to reach it from elsewhere", addr)}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("--debug-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // heap, goroutine, allocs, threadcreate …
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	log.Info("profiler listening", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		hs.Shutdown(ctx)
	}, nil
}
