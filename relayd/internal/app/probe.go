package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/claude-relay/claude-relay/relayd/internal/daemon"
)

// relayHealth is what relayd's /healthz says (see server.health).
type relayHealth struct {
	Status  string  `json:"status"`
	Version string  `json:"version"`
	Proto   int     `json:"proto"`
	UptimeS float64 `json:"uptime_s"`
	Online  int     `json:"peers_online"`
}

// probeHealth asks the relay at addr for /healthz. With useTLS the
// certificate is not checked: this only asks a local relay whether it is up.
func probeHealth(ctx context.Context, addr string, useTLS bool) (relayHealth, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, url, err := getLocal(ctx, addr, useTLS, "/healthz", "")
	if err != nil {
		return relayHealth{}, err
	}
	defer resp.Body.Close()
	var h relayHealth
	// 503 is a relay whose store writes fail: status "degraded".
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return h, fmt.Errorf("GET %s: %s (is something other than relayd on that port?)", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || h.Status == "" {
		return h, fmt.Errorf("GET %s: not relayd's answer (is something other than relayd on that port?)", url)
	}
	return h, nil
}

// getLocal GETs path from the relay listening on addr on this machine (or
// at the end of a tunnel), with token as a bearer token when one is given.
func getLocal(ctx context.Context, addr string, useTLS bool, path, token string) (*http.Response, string, error) {
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	tr := insecureTransport(useTLS)
	tr.DisableKeepAlives = true // one request: no idle connection left behind
	url := scheme + "://" + probeAddr(addr) + path
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, url, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, url, fmt.Errorf("GET %s: %w", url, err)
	}
	return resp, url, nil
}

// probeAddr turns a listen address into one to dial: a wildcard host is
// reached on loopback.
func probeAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// argValue finds flag's value in relayd's args, as --flag V or --flag=V.
func argValue(args []string, flag string) (string, bool) {
	for i, a := range args {
		if a == "--"+flag || a == "-"+flag {
			if i+1 < len(args) {
				return args[i+1], true
			}
			return "", false
		}
		for _, p := range []string{"--" + flag + "=", "-" + flag + "="} {
			if v, ok := strings.CutPrefix(a, p); ok {
				return v, true
			}
		}
	}
	return "", false
}

// listenOf works out where a relayd started with args listens.
func listenOf(args []string) string {
	listen, ok := argValue(args, "listen")
	if !ok {
		listen = daemon.DefaultListen
	}
	port := 0
	if p, ok := argValue(args, "port"); ok {
		fmt.Sscan(p, &port)
	}
	if addr, err := listenAddr(listen, port); err == nil {
		return addr
	}
	return listen
}

// insecureTransport is a transport for probing a relay on this machine (or
// at the end of a tunnel): no proxy, and with TLS the certificate is not
// checked, since the probe only asks whether relayd is up.
func insecureTransport(useTLS bool) *http.Transport {
	tr := &http.Transport{Proxy: nil}
	if useTLS {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	return tr
}
