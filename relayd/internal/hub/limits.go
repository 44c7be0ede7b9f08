package hub

import (
	"fmt"
	"strings"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/ratelimit"
)

// Limits bound how fast clients may ask the relay for things. A zero Rate
// is unlimited. Over a limit the request is not carried out and the client
// gets an error frame with CodeRateLimited and RetryAfterMS: nothing is
// dropped without the sender hearing of it.
type Limits struct {
	// Client bounds the requests (send, peers, sessions, history, clear) of
	// one client id, across its connections. Acks are never limited:
	// refusing one would only make the relay resend what it acknowledges.
	Client ratelimit.Rate
	// Pair bounds the messages from one sender to one recipient: the hard
	// brake for a pair that talks at machine speed (a script gone wrong).
	// Set well above real work; Loop is what notices two agents caught in
	// a conversation that goes nowhere.
	Pair ratelimit.Rate
	// Loop is when a pair's exchange looks like a loop: N messages between
	// the same two ids within Per, three in four of them replies. Nothing is
	// refused; the sender's accepted carries a Warning (see loopWatch).
	Loop ratelimit.Rate
	// Global bounds agent-to-agent messages through the whole relay; each
	// recipient of a send counts once. It catches loops among three or
	// more agents that stay under the pair limit.
	Global ratelimit.Rate
	// NewIDs bounds the mailboxes one client may have made for ids the
	// relay has never seen (send with queue_if_unknown): each such id
	// counts once per send. Without it one client could fill the disk
	// with mailboxes nobody will read, within every other limit.
	NewIDs ratelimit.Rate
}

// limiter holds the buckets of Limits.
type limiter struct {
	lim    Limits
	client *ratelimit.Buckets
	pair   *ratelimit.Buckets
	global *ratelimit.Buckets
	loops  *loopWatch
	newIDs *ratelimit.Buckets
}

func newLimiter(l Limits) *limiter {
	return &limiter{lim: l, client: ratelimit.New(l.Client), pair: ratelimit.New(l.Pair), global: ratelimit.New(l.Global), loops: newLoopWatch(l.Loop), newIDs: ratelimit.New(l.NewIDs)}
}

// allowFrame charges one request of c's to the client limit; acks are free.
func (h *Hub) allowFrame(c *Conn, f protocol.Frame) *protocol.Error {
	if _, ack := f.(*protocol.Ack); ack || h.lim.client == nil {
		return nil
	}
	ok, retry := h.lim.client.Allow(c.id, h.opts.Now())
	if ok {
		return nil
	}
	h.stats.RateLimited.Add(1)
	return &protocol.Error{Code: protocol.CodeRateLimited, Ref: protocol.RefOf(f), RetryAfterMS: retry.Milliseconds(),
		Message: fmt.Sprintf("slow down: %s may make %s requests (the relay's --client-limit); this %s was not carried out — retry in %s",
			c.id, h.lim.lim.Client, f.Type(), retry.Round(time.Millisecond))}
}

// allowSend charges a send from `from` to the global and per-pair limits,
// all or nothing: a send that would push any pair past its limit is held
// whole, so no recipient gets a message that others of the same send miss.
func (h *Hub) allowSend(from string, targets []string, ref string) *protocol.Error {
	if len(targets) == 0 || h.lim.pair == nil && h.lim.global == nil {
		return nil
	}
	wants := make([]ratelimit.Want, 0, len(targets)+1)
	wants = append(wants, ratelimit.Want{B: h.lim.global, Key: "", N: len(targets)})
	for _, to := range targets {
		wants = append(wants, ratelimit.Want{B: h.lim.pair, Key: from + "\x00" + to, N: 1})
	}
	ok, blocked, retry := ratelimit.AllowAll(h.opts.Now(), wants...)
	if ok {
		return nil
	}
	h.stats.RateLimited.Add(1)
	wait := retry.Round(time.Second)
	if wait < time.Second {
		wait = retry.Round(time.Millisecond)
	}
	var msg string
	if blocked.B == h.lim.pair {
		to := blocked.Key[len(from)+1:]
		msg = fmt.Sprintf("held, not delivered: %s → %s has reached %s messages (the relay's --pair-limit); it may send to %s again in %s. "+
			"If two agents are answering each other in a loop, stop replying and ask your user.", from, to, h.lim.lim.Pair, to, wait)
		h.log.Warn("pair limit reached; holding sends", "from", from, "to", to, "limit", h.lim.lim.Pair.String(), "retry_in", wait)
	} else {
		msg = fmt.Sprintf("held, not delivered: the relay carries at most %s agent-to-agent messages (its --global-limit) and that is reached; "+
			"retry in %s. If agents are answering each other in a loop, stop replying and ask your user.", h.lim.lim.Global, wait)
		h.log.Warn("global message limit reached; holding sends", "from", from, "limit", h.lim.lim.Global.String(), "retry_in", wait)
	}
	return &protocol.Error{Code: protocol.CodeRateLimited, Ref: ref, RetryAfterMS: retry.Milliseconds(), Message: msg}
}

// allowNewIDs charges the mailboxes a send would make for ids never seen
// to from's new-id limit, all or nothing.
func (h *Hub) allowNewIDs(from string, fresh []string, ref string) *protocol.Error {
	if len(fresh) == 0 || h.lim.newIDs == nil {
		return nil
	}
	ok, _, retry := ratelimit.AllowAll(h.opts.Now(), ratelimit.Want{B: h.lim.newIDs, Key: from, N: len(fresh)})
	if ok {
		return nil
	}
	h.stats.RateLimited.Add(1)
	h.log.Warn("new-id limit reached; not keeping mail for ids never seen", "from", from, "ids", fresh, "limit", h.lim.lim.NewIDs.String())
	return &protocol.Error{Code: protocol.CodeRateLimited, Ref: ref, RetryAfterMS: retry.Milliseconds(),
		Message: fmt.Sprintf("not sent: %s may keep mail for at most %s ids the relay has never seen (its --new-id-limit), and %s would be more — check the ids (relay_sessions lists the known ones), or send without queue_if_unknown; retry in %s",
			from, h.lim.lim.NewIDs, strings.Join(fresh, ", "), retry.Round(time.Second))}
}
