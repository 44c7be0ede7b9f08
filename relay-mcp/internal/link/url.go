package link

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// DefaultURL is the relay a session talks to when none is configured.
const DefaultURL = "ws://127.0.0.1:9999/v1/ws"

// ParseURL normalises a relay address: ws:// and wss:// URLs, http(s)://
// (mapped to ws(s)://) and a bare host:port (ws://). A URL without a path
// means the protocol v1 endpoint /v1/ws. Empty means DefaultURL.
func ParseURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultURL, nil
	}
	if !strings.Contains(s, "://") {
		s = "ws://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("relay URL %q: %w", s, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "ws", "http":
		u.Scheme = "ws"
	case "wss", "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("relay URL %q: scheme must be ws:// or wss:// (for example ws://127.0.0.1:9999)", s)
	}
	if u.User != nil {
		return "", fmt.Errorf("relay URL %q: put the token in RELAY_TOKEN or --token-file, not in the URL", u.Redacted())
	}
	if u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("relay URL %q: unexpected fragment or opaque part", s)
	}
	host := u.Hostname()
	if host == "" {
		return "", fmt.Errorf("relay URL %q has no host (for example ws://127.0.0.1:9999)", s)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("relay URL %q: port must be 1-65535", s)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return "", fmt.Errorf("relay URL %q: empty port", s)
	}
	if strings.ContainsAny(host, " \t\r\n") {
		return "", fmt.Errorf("relay URL %q: bad host", s)
	}
	if strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return "", fmt.Errorf("relay URL %q: bad IPv6 host", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/ws"
		u.RawPath = ""
	}
	return u.String(), nil
}

// ParseURLs normalises a list of relays that serve the same mailboxes (the
// nodes of a cluster), each as ParseURL does. An item may itself hold
// several, separated by commas (RELAY_URL=ws://a:9999,ws://b:9999). Empty
// items are skipped and repeats dropped; no URL at all means DefaultURL.
func ParseURLs(items []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, item := range items {
		for _, s := range strings.Split(item, ",") {
			if strings.TrimSpace(s) == "" {
				continue
			}
			u, err := ParseURL(s)
			if err != nil {
				return nil, err
			}
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	if len(out) == 0 {
		out = []string{DefaultURL}
	}
	return out, nil
}
