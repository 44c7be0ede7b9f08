package hub

import (
	"fmt"
	"sync"
	"time"

	"github.com/claude-relay/claude-relay/relayd/internal/ratelimit"
)

// loopReplyShare is the share of replies (3 in 4) that makes a busy
// exchange look like a loop. An orchestrator handing out tasks and reading
// answers sends half new work, half replies; two agents thanking and
// acknowledging each other send almost nothing but replies.
const (
	loopReplyNum = 3
	loopReplyDen = 4
)

// loopWatch notices two agents whose exchange looks like a loop: at least
// rate.N messages between the same two ids (both directions counted, each
// direction at least a quarter of them) within rate.Per, and three in four
// of them replies. It refuses nothing: the sender's accepted carries a
// warning the agent's tool shows its model. A reply is a send with
// reply_to, or one in the thread the other side last wrote in. Safe for
// concurrent use; memory follows the pairs that talked within the window.
type loopWatch struct {
	rate  ratelimit.Rate
	mu    sync.Mutex
	pairs map[string]*pairLog
	swept time.Time
}

// pairLog is the recent exchange of two ids, lo < hi.
type pairLog struct {
	ring   []loopEntry // the last rate.N messages, oldest at next once full
	next   int
	thread [2]string // the thread each side last wrote in; [0] is lo's
}

type loopEntry struct {
	at    time.Time
	fromL bool // sent by lo
	reply bool
}

// newLoopWatch returns a watch for rate; nil (watching nothing) when rate
// is unlimited.
func newLoopWatch(rate ratelimit.Rate) *loopWatch {
	if rate.Unlimited() || rate.N < 2 {
		return nil
	}
	return &loopWatch{rate: rate, pairs: map[string]*pairLog{}}
}

// note records a message from `from` to each of targets and returns a
// warning for the sender when the exchange with one of them looks like a
// loop, else "".
func (w *loopWatch) note(from string, targets []string, replyTo, thread string, now time.Time) string {
	if w == nil {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	warning := ""
	for _, to := range targets {
		if to == from {
			continue
		}
		lo, hi, fromL := from, to, true
		if to < from {
			lo, hi, fromL = to, from, false
		}
		key := lo + "\x00" + hi
		p := w.pairs[key]
		if p == nil {
			p = &pairLog{ring: make([]loopEntry, 0, min(w.rate.N, 8))}
			w.pairs[key] = p
		}
		side, other := 0, 1
		if !fromL {
			side, other = 1, 0
		}
		reply := replyTo != "" || thread != "" && thread == p.thread[other]
		p.thread[side] = thread
		e := loopEntry{at: now, fromL: fromL, reply: reply}
		if len(p.ring) < w.rate.N {
			p.ring = append(p.ring, e)
		} else {
			p.ring[p.next] = e
			p.next = (p.next + 1) % w.rate.N
		}
		if warning == "" {
			warning = w.judge(p, from, to, now)
		}
	}
	w.sweep(now)
	return warning
}

// judge returns the warning for p's exchange, or "" if it does not look
// like a loop. Called with mu held.
func (w *loopWatch) judge(p *pairLog, from, to string, now time.Time) string {
	if len(p.ring) < w.rate.N {
		return ""
	}
	oldest := p.ring[p.next].at
	if now.Sub(oldest) > w.rate.Per {
		return ""
	}
	var replies, fromL int
	for _, e := range p.ring {
		if e.reply {
			replies++
		}
		if e.fromL {
			fromL++
		}
	}
	n := len(p.ring)
	if replies*loopReplyDen < n*loopReplyNum || fromL*4 < n || (n-fromL)*4 < n {
		return ""
	}
	took := now.Sub(oldest).Round(time.Second)
	return fmt.Sprintf("%s and %s have exchanged %d messages in %s, %d of them replies to each other", from, to, n, took, replies)
}

// sweep forgets pairs silent for a whole window, at most once per window.
// Called with mu held.
func (w *loopWatch) sweep(now time.Time) {
	if now.Sub(w.swept) < w.rate.Per {
		return
	}
	w.swept = now
	for key, p := range w.pairs {
		last := p.ring[(p.next+len(p.ring)-1)%len(p.ring)]
		if now.Sub(last.at) > w.rate.Per {
			delete(w.pairs, key)
		}
	}
}

// len is how many pairs are remembered (for tests).
func (w *loopWatch) len() int {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pairs)
}
