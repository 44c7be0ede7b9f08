package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/coder/websocket"
)

// connectOnce dials, says hello and serves one connection until it ends.
// welcomed reports whether the relay accepted the hello.
func (l *Link) connectOnce(ctx context.Context) (welcomed bool, err error) {
	// The dial's context stays tied to the connection after the upgrade
	// (cancelling it drops the TCP connection at once), so it is not ctx
	// itself: ctx ending aborts the dial, and after the dial serve says
	// goodbye with a close frame instead.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	abort := context.AfterFunc(ctx, cancel)
	opts := &websocket.DialOptions{HTTPClient: l.httpClient()}
	if l.cfg.Token != "" {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + l.cfg.Token}}
	}
	url := l.URL()
	conn, resp, err := websocket.Dial(dctx, url, opts)
	abort()
	l.mu.Lock()
	l.refused = err != nil && errors.Is(err, syscall.ECONNREFUSED)
	l.mu.Unlock()
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return false, &stopError{fmt.Sprintf("relay at %s refused the token (HTTP %d) — set RELAY_TOKEN or --token-file to the relay's token", url, resp.StatusCode), protocol.CloseUnauthorized}
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if hint := dialHint(url, resp, err); hint != "" {
			return false, errors.New(hint)
		}
		return false, fmt.Errorf("relay not reachable at %s (%s) — is relayd running? start it with `relayd`", url, shortErr(err))
	}
	conn.SetReadLimit(maxRelayFrame)

	l.mu.Lock()
	hello := l.cfg.Hello
	l.mu.Unlock()
	// The seq of the last message received, not the highest ever seen: a
	// relay whose store was reset numbers from 1 again (and treats a
	// resume_after beyond its mailbox as 0, resending what it holds, which
	// the inbox dedupes by id).
	hello.ResumeAfter = l.cfg.Inbox.ResumeAfter()
	if hello.Status != "" && protocol.Validate(&protocol.Status{Status: hello.Status}) != nil {
		l.dropStatus(hello.Status, "the relay's rules refuse it")
		hello.Status = ""
	}
	// Messages arrive as soon as they are sent, marked provisional until
	// the relay's store commits them (handle keeps them apart till then).
	hello.Provisional = true
	if err := l.write(ctx, conn, &hello); err != nil {
		conn.CloseNow()
		return false, fmt.Errorf("send hello: %w", err)
	}
	hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
	f, err := readFrame(hctx, conn)
	hcancel()
	if err != nil {
		conn.CloseNow()
		return false, l.classifyClose(err)
	}
	w, ok := f.(*protocol.Welcome)
	if !ok {
		if ef, isErr := f.(*protocol.ErrorFrame); isErr {
			// The relay closes after a refused hello; read the close code.
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
			_, cerr := readFrame(rctx, conn)
			rcancel()
			conn.CloseNow()
			if hello.Status != "" {
				// The status is the one part of the hello that changes
				// while the process runs: never let it keep the session
				// offline. Retry without it.
				l.dropStatus(hello.Status, "the relay refused the hello that carried it: "+ef.Message)
				return false, fmt.Errorf("relay refused hello: %s (%s); retrying without the status line", ef.Message, ef.Code)
			}
			if cerr != nil {
				var se *stopError
				if errors.As(l.classifyClose(cerr), &se) {
					return false, &stopError{fmt.Sprintf("relay refused hello: %s (%s)", ef.Message, ef.Code), se.code}
				}
			}
			return false, fmt.Errorf("relay refused hello: %s (%s)", ef.Message, ef.Code)
		}
		conn.CloseNow()
		return false, fmt.Errorf("relay answered hello with %s, not welcome", f.Type())
	}
	return true, l.serve(ctx, conn, w)
}

// dropStatus forgets the kept status line if it is still s.
func (l *Link) dropStatus(s, why string) {
	l.mu.Lock()
	if l.cfg.Hello.Status == s {
		l.cfg.Hello.Status = ""
	}
	l.mu.Unlock()
	l.log.Warn("status line dropped", "status", s, "why", why)
}

// fitMeta makes the hello's metadata fit the relay's rules, which refuse a
// hello with a field over protocol.MaxMetaBytes or with a NUL byte: a
// working directory deep enough, or a long label, would otherwise keep the
// session offline for good. A path keeps its end (the part that names the
// project), other fields their start; both are marked with "…".
func fitMeta(h *protocol.Hello, log *slog.Logger) {
	for _, f := range []struct {
		name    string
		v       *string
		keepEnd bool
	}{{"cwd", &h.Cwd, true}, {"host", &h.Host, false}, {"agent", &h.Agent, false}, {"label", &h.Label, false}} {
		v := strings.ReplaceAll(*f.v, "\x00", "")
		if len(v) > protocol.MaxMetaBytes {
			v = shorten(v, protocol.MaxMetaBytes, f.keepEnd)
		}
		if v != *f.v {
			log.Warn("hello field shortened to the relay's limit", "field", f.name, "bytes", len(*f.v), "limit", protocol.MaxMetaBytes, "sent", v)
			*f.v = v
		}
	}
}

// shorten cuts s to at most n bytes on a UTF-8 boundary with "…" where the
// cut was made, keeping its end (keepEnd) or its start.
func shorten(s string, n int, keepEnd bool) string {
	const mark = "…"
	n -= len(mark)
	if keepEnd {
		i := len(s) - n
		for i < len(s) && !utf8.RuneStart(s[i]) {
			i++
		}
		return mark + s[i:]
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + mark
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s, "dial") {
		return s[i+2:]
	}
	return s
}

// classifyClose turns a read error into a stopError for "do not reconnect"
// close codes.
func (l *Link) classifyClose(err error) error {
	code := int(websocket.CloseStatus(err))
	if code < 0 {
		return err
	}
	reason := protocol.CloseReason(code)
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Reason != "" {
		reason = reason + ": " + ce.Reason
	}
	if !protocol.ShouldReconnect(code) {
		if code == protocol.CloseReplaced {
			return &stopError{"replaced: another relay-mcp connected with the id " + l.cfg.Hello.ClientID + " and took it over; this session stays offline so the two do not flap (restart it with a different id if both are needed)", code}
		}
		return &stopError{fmt.Sprintf("relay closed the connection (%d %s)", code, reason), code}
	}
	return fmt.Errorf("relay closed the connection (%d %s)", code, reason)
}
