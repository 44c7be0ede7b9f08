package cluster

import (
	"context"
	"time"

	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// The operator's views (the console) read this node's index, which holds
// the whole cluster's mail once it has caught up with the stream.

func (s *Store) Timeline(ctx context.Context, q store.TimelineQuery) ([]store.Message, bool, error) {
	s.sync(ctx)
	return s.ix.mem.Timeline(ctx, q)
}

func (s *Store) Stages(ctx context.Context, ids []string) ([]store.Receipt, error) {
	s.sync(ctx)
	return s.ix.mem.Stages(ctx, ids)
}

func (s *Store) OldestUnread(ctx context.Context, clients []string) (map[string]time.Time, error) {
	return s.ix.mem.OldestUnread(ctx, clients)
}

func (s *Store) Search(ctx context.Context, q store.SearchQuery) ([]store.Message, bool, error) {
	s.sync(ctx)
	return s.ix.mem.Search(ctx, q)
}

// UsedBytes is 0: JetStream bounds its own storage (the stream's limits),
// so relayd's --max-store-mb does not apply to a cluster.
func (s *Store) UsedBytes(context.Context) (int64, error) { return 0, nil }
