package link

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/claude-relay/claude-relay/protocol"
)

// maxRelayFrame bounds a frame from the relay. It is larger than the
// protocol's limit on client frames because the relay's own frames grow
// with the team: a welcome or peers listing with 10 000 sessions online is
// about 2 MB. The relay is trusted not to send more than it needs.
const maxRelayFrame = 32 << 20

// relayLimits decode what the relay sends: anything the read limit let
// through. The relay's own limits are for what clients send; a message
// whose body needed escaping, or a history page, may be larger than a
// client's frame may be, and ignoring it would lose it.
var relayLimits = protocol.Limits{MaxFrameBytes: maxRelayFrame, MaxBodyBytes: maxRelayFrame}

// LoadCA returns a TLS config that trusts only the CA certificates in the
// PEM file at path (like curl --cacert): for a relay whose certificate is
// self-signed or from a private CA.
func LoadCA(path string) (*tls.Config, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading --ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-file %s holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA that signed the relay's --tls-cert", path)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// httpClient is the client that dials the relay: the default one unless a
// TLS config is set.
func (l *Link) httpClient() *http.Client {
	if l.cfg.TLS == nil {
		return nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = l.cfg.TLS
	return &http.Client{Transport: tr}
}

// dialHint explains dial failures whose fix is not "start relayd": TLS
// trouble and a scheme that does not match the relay's.
func dialHint(url string, resp *http.Response, err error) string {
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return fmt.Sprintf("relay at %s presented a certificate this machine does not trust (%s) — pass --ca-file (RELAY_CA_FILE) with the CA that signed the relay's certificate", url, shortErr(err))
	case errors.As(err, &hostErr):
		return fmt.Sprintf("relay at %s presented a certificate for another name (%s) — connect with a host name the certificate lists, or reissue it for this one", url, shortErr(err))
	case errors.As(err, &invalid):
		return fmt.Sprintf("relay at %s presented an invalid certificate (%s) — is it expired? renew the relay's --tls-cert", url, shortErr(err))
	case strings.Contains(err.Error(), "first record does not look like a TLS handshake"):
		return fmt.Sprintf("relay at %s does not speak TLS — use ws:// instead of wss://, or start relayd with --tls-cert/--tls-key", url)
	case resp != nil && resp.StatusCode == http.StatusBadRequest && strings.HasPrefix(url, "ws://"):
		return fmt.Sprintf("relay at %s answered HTTP 400 — if it serves TLS (relayd --tls-cert), use wss://", url)
	case resp != nil && (resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests):
		why := "it holds its connection limit"
		if said := relaySaid(resp); said != "" {
			why = said // the relay names the limit: connections, or wrong tokens
		}
		return fmt.Sprintf("relay at %s is refusing new connections (HTTP %d: %s) — will retry", url, resp.StatusCode, why)
	}
	return ""
}

// relaySaid is the first line of the text a relay sent with a refused
// upgrade (the websocket library keeps up to 1 KiB of it), without the
// status code relayd puts in front; "" when there is none.
func relaySaid(resp *http.Response) string {
	if resp.Body == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	line = strings.TrimSpace(strings.TrimPrefix(line, strconv.Itoa(resp.StatusCode)))
	return line
}

// Cleartext reports whether a relay URL (as ParseURL returns it) sends
// tokens and messages unencrypted over a network: ws:// to a host that is
// not loopback. An SSH tunnel's ws://127.0.0.1 is fine.
func Cleartext(relayURL string) bool {
	u, err := url.Parse(relayURL)
	if err != nil || u.Scheme != "ws" {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return false
	}
	ip := net.ParseIP(h)
	return ip == nil || !ip.IsLoopback()
}

// DialHint explains a failed WebSocket dial whose cause is not "nothing
// listens" (TLS trouble, a scheme that does not match the relay's, a full
// relay), or returns "". relay-mcp doctor uses it too.
func DialHint(url string, resp *http.Response, err error) string { return dialHint(url, resp, err) }
