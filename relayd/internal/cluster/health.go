package cluster

import (
	"context"
	"time"
)

// Health is what a node knows of its cluster: for relayd doctor and
// /metrics.
type Health struct {
	Node string // this relayd node's name in presence
	// Connected: the node's NATS connection is up; Server is the NATS
	// server it is connected to (its URL), ServerName that server's name.
	Connected  bool
	Server     string
	ServerName string
	Reconnects uint64 // times the NATS connection came back
	// StreamLast is the stream's last seq as its leader reports it (0
	// when it could not be asked: Err says why); Applied the last seq
	// this node's index holds. Lag is how many it is behind.
	StreamLast, Applied, Lag uint64
	// IndexRestarts counts the consumers this node's index replaced
	// because it stayed behind the stream (index.go).
	IndexRestarts uint64
	// Replicas of the stream, and how many of them are current.
	Replicas, Current int
	// Online counts the ids held by other nodes; Held those held here.
	Online, Held int
	// Stream is the stream's state, leader and each replica (inspect.go);
	// nil when it could not be asked.
	Stream *StreamReport
	Err    error
}

// Health asks the stream for its state (one request, bounded by ctx and
// 2 s) and reports this node's lag behind it.
func (s *Store) Health(ctx context.Context) Health {
	nc := s.opts.Conn
	h := Health{Node: s.opts.Node, Connected: nc.IsConnected(), Server: nc.ConnectedUrlRedacted(), ServerName: nc.ConnectedServerName(),
		Reconnects: nc.Stats().Reconnects, Applied: s.ix.Applied(), IndexRestarts: s.ix.Restarts()}
	s.pres.mu.Lock()
	h.Online, h.Held = len(s.pres.remote), len(s.pres.held)
	s.pres.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		h.Err = err
		return h
	}
	h.StreamLast = info.State.LastSeq
	if h.StreamLast > h.Applied {
		h.Lag = h.StreamLast - h.Applied
	}
	h.Replicas = info.Config.Replicas
	h.Stream = streamReport(info)
	if info.Cluster != nil {
		h.Current = 1 // the leader
		for _, r := range info.Cluster.Replicas {
			if r.Current {
				h.Current++
			}
		}
	}
	return h
}
