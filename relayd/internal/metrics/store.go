package metrics

import (
	"time"

	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// Store returns st with its appends timed into relayd_store_append_seconds,
// from Submit to the commit: what a sender waits for. Every other method
// goes straight through.
func (m *Metrics) Store(st store.Store) store.Store {
	return timedStore{Store: st, m: m}
}

type timedStore struct {
	store.Store
	m *Metrics
}

func (t timedStore) Submit(msg store.Message, recipients []string, maxQueue int, ref *store.SendRef, done func(store.Submitted)) ([]store.Slot, bool) {
	start := time.Now()
	return t.Store.Submit(msg, recipients, maxQueue, ref, func(r store.Submitted) {
		if r.Err == nil && r.Dup == nil {
			t.m.appendSeconds.Observe(time.Since(start).Seconds())
		}
		done(r)
	})
}
