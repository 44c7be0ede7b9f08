package metrics

import (
	"context"
	"time"

	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// Store returns st with its appends timed into relayd_store_append_seconds.
// Every other method goes straight through. When st can pipeline appends
// (store.Pipeliner), so can the result, and an async append is timed from
// the call to its completion: what a sender waits for.
func (m *Metrics) Store(st store.Store) store.Store {
	t := timedStore{Store: st, m: m}
	if p, ok := st.(store.Pipeliner); ok {
		return timedPipeliner{timedStore: t, p: p}
	}
	return t
}

type timedStore struct {
	store.Store
	m *Metrics
}

func (t timedStore) Append(ctx context.Context, msg store.Message, recipients []string, maxQueue int) ([]store.Slot, error) {
	start := time.Now()
	slots, err := t.Store.Append(ctx, msg, recipients, maxQueue)
	if err == nil {
		t.m.appendSeconds.Observe(time.Since(start).Seconds())
	}
	return slots, err
}

// Unwrap returns the wrapped store, so that optional interfaces this
// wrapper does not time (store.Receipts) are still found.
func (t timedStore) Unwrap() store.Store { return t.Store }

type timedPipeliner struct {
	timedStore
	p store.Pipeliner
}

func (t timedPipeliner) AppendAsync(msg store.Message, recipients []string, maxQueue int, ref *store.SendRef, done func([]store.Slot, *store.Sent, error)) {
	start := time.Now()
	t.p.AppendAsync(msg, recipients, maxQueue, ref, func(slots []store.Slot, dup *store.Sent, err error) {
		if err == nil && dup == nil {
			t.m.appendSeconds.Observe(time.Since(start).Seconds())
		}
		done(slots, dup, err)
	})
}
