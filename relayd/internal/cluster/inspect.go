package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Report is what one relayd node sees of the cluster through its NATS
// connection: the NATS server it reached, the stream that holds the mail
// and the presence bucket. relayd doctor prints it; /metrics exports it.
type Report struct {
	Server  string // the NATS server connected to
	Version string // its version
	Cluster string // its NATS cluster's name; "" for a single server
	// Stream is the mail stream; nil until a relayd has created it.
	Stream *StreamReport
	// Presence: whether the presence bucket exists, and the ids it holds
	// (online on some node).
	Presence    bool
	PresenceIDs int
	// Applied is the last stream seq the node's index has applied; set
	// by Store.Inspect (a running node), 0 from Inspect.
	Applied uint64
}

// StreamReport is the mail stream as the NATS cluster reports it.
type StreamReport struct {
	Name                     string
	Messages, Bytes, LastSeq uint64
	Replicas                 int    // copies the stream is configured with
	Leader                   string // the NATS server ordering its writes; "" when none is elected
	Peers                    []Peer // the leader first, then the other replicas
}

// Peer is one NATS server holding a replica of the stream.
type Peer struct {
	Server  string
	Leader  bool
	Current bool   // caught up with the leader
	Lag     uint64 // operations behind the leader
}

// Names of what the cluster keeps in JetStream, for messages that tell an
// operator what to look for (nats stream info RELAY).
const (
	StreamName     = streamName
	PresenceBucket = presenceBucket
)

// ErrNoJetStream is Inspect's error for a NATS server without JetStream.
var ErrNoJetStream = errors.New("JetStream is not enabled on this NATS server (jetstream { store_dir: … } in its config)")

// Inspect reports what the cluster looks like through nc. A stream or
// bucket that does not exist yet is not an error (the first relayd
// creates them): Stream is nil, Presence false.
func Inspect(ctx context.Context, nc *nats.Conn) (Report, error) {
	r := Report{Server: nc.ConnectedServerName(), Version: nc.ConnectedServerVersion(), Cluster: nc.ConnectedClusterName()}
	js, err := jetstream.New(nc)
	if err != nil {
		return r, err
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return r, ErrNoJetStream
		}
		return r, fmt.Errorf("JetStream on %s: %w", r.Server, err)
	}
	st, err := js.Stream(ctx, streamName)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
	case err != nil:
		return r, fmt.Errorf("stream %s: %w", streamName, err)
	default:
		info, err := st.Info(ctx)
		if err != nil {
			return r, fmt.Errorf("stream %s: %w", streamName, err)
		}
		r.Stream = streamReport(info)
	}
	kv, err := js.KeyValue(ctx, presenceBucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
	case err != nil:
		return r, fmt.Errorf("bucket %s: %w", presenceBucket, err)
	default:
		r.Presence = true
		keys, err := kv.ListKeys(ctx) // the live keys: expired claims are gone
		if err != nil {
			return r, fmt.Errorf("bucket %s: %w", presenceBucket, err)
		}
		for range keys.Keys() {
			r.PresenceIDs++
		}
	}
	return r, nil
}

func streamReport(info *jetstream.StreamInfo) *StreamReport {
	s := &StreamReport{Name: info.Config.Name, Messages: info.State.Msgs, Bytes: info.State.Bytes,
		LastSeq: info.State.LastSeq, Replicas: info.Config.Replicas}
	if c := info.Cluster; c != nil {
		s.Leader = c.Leader
		if c.Leader != "" {
			s.Peers = append(s.Peers, Peer{Server: c.Leader, Leader: true, Current: true})
		}
		for _, p := range c.Replicas {
			s.Peers = append(s.Peers, Peer{Server: p.Name, Current: p.Current, Lag: p.Lag})
		}
	}
	return s
}
