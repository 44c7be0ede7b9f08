package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// Options configure a cluster node.
type Options struct {
	// Conn is a connection to the NATS cluster (or the embedded server).
	// The Store does not close it.
	Conn *nats.Conn
	// Node names this relayd node in presence entries; it must differ
	// between nodes. Defaults to a random name.
	Node string
	// Replicas is how many NATS nodes hold each write of the stream and
	// the presence bucket: 3 in a 3-node cluster (a write is acknowledged
	// once two hold it), 1 on a single server. Defaults to 1.
	Replicas int
	// Retention is how long mail is kept (the stream's MaxAge); 0 keeps it.
	Retention time.Duration
	// PresenceTTL is how long a node's claim on an id lasts unless renewed
	// (renewed every third of it): how long an id stays online after its
	// node died without a word. Defaults to 15 s.
	PresenceTTL time.Duration
	// PublishTimeout bounds the wait for JetStream to acknowledge a write.
	// Defaults to 10 s (a NATS node lost mid-write leaves the cluster a few
	// seconds to elect a new stream leader).
	PublishTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Store is relayd's store.Store on a NATS JetStream cluster, and the
// presence of the ids online on every node (presence.go). Writes go to
// the stream; reads come from this node's index of it (index.go).
type Store struct {
	opts   Options
	log    *slog.Logger
	js     jetstream.JetStream
	stream jetstream.Stream
	ix     *index
	pres   *presence

	// The operator's holds are this node's own, in memory: the node
	// enforces them on the sends it takes, and a restart of the node
	// releases them (doc.go).
	store.HoldBook

	subMu  sync.Mutex       // orders publishes and their queueing
	subs   chan *submission // to the committer, in Submit order
	closed chan struct{}
	done   chan struct{} // the committer has returned
}

var _ store.Store = (*Store)(nil)

// Open creates the stream and the presence bucket if they are missing,
// rebuilds this node's index from the stream and returns the store.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Conn == nil {
		return nil, errors.New("cluster: no NATS connection")
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Node == "" {
		o.Node = nuid.Next()
	}
	if o.PresenceTTL <= 0 {
		o.PresenceTTL = 15 * time.Second
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	js, err := jetstream.New(o.Conn, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(o.PublishTimeout))
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	var stream jetstream.Stream
	err = retry(ctx, func(ctx context.Context) (err error) {
		stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: streamName, Subjects: []string{subjectAll}, Retention: jetstream.LimitsPolicy,
			MaxAge: o.Retention, Duplicates: 2 * time.Minute, Replicas: o.Replicas, AllowDirect: true,
			Storage: jetstream.FileStorage, Description: "claude-relay mail and mailbox events",
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: create stream %s with %d replicas: %w (a cluster of fewer NATS nodes needs --cluster-replicas 1)", streamName, o.Replicas, err)
	}
	s := &Store{opts: o, log: o.Logger, js: js, stream: stream, ix: newIndex(o.Logger, o.Node),
		subs: make(chan *submission, 1024), closed: make(chan struct{}), done: make(chan struct{})}
	if s.pres, err = openPresence(ctx, s, js); err != nil {
		return nil, err
	}
	var info *jetstream.StreamInfo
	err = retry(ctx, func(ctx context.Context) (err error) {
		// Right after the stream is created its leader may not answer
		// yet (nodes started together): asked once, this timed out.
		info, err = stream.Info(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: stream %s: %w", streamName, err)
	}
	last := lastSeq(info)
	if err := s.ix.start(ctx, js, last, s.lastSeq); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := s.ix.waitApplied(rctx, last); err != nil {
		s.ix.stop()
		return nil, fmt.Errorf("cluster: rebuild the index from the stream: %w", err)
	}
	go s.commitLoop()
	s.pres.start()
	return s, nil
}

// Close stops following the stream and the presence bucket; ids this node
// holds are released.
func (s *Store) Close() error {
	select {
	case <-s.closed:
		return nil
	default:
	}
	close(s.closed)
	<-s.done
	s.pres.stop()
	s.ix.stop()
	return nil
}

// sync waits until the index holds everything the stream held when it was
// called: reads that must see writes made on other nodes call it. If the
// stream cannot be asked, the index answers as it is.
func (s *Store) sync(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, barrierTimeout)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		s.log.Debug("cluster: stream info for a read barrier", "err", err)
		return
	}
	if err := s.ix.waitApplied(ctx, lastSeq(info)); err != nil {
		s.log.Warn("cluster: index behind the stream; answering from what it holds", "err", err)
	}
}

// lastSeq asks the stream for the last seq it holds.
func (s *Store) lastSeq(ctx context.Context) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	return lastSeq(info), nil
}

// lastSeq is the last seq the stream holds: 0 when it holds none (its
// messages may all have passed the retention, leaving nothing to wait for).
func lastSeq(info *jetstream.StreamInfo) uint64 {
	if info.State.Msgs == 0 {
		return 0
	}
	return info.State.LastSeq
}

// publishOp publishes an event about client and waits until this node's
// index applied it; it returns the result of applying it.
func (s *Store) publishOp(ctx context.Context, kind, client string, ev opEvent) (int, error) {
	ev.Op = nuid.Next()
	data, err := json.Marshal(ev)
	if err != nil {
		return 0, err
	}
	ch := s.ix.expect(ev.Op)
	ctx, cancel := context.WithTimeout(ctx, s.opts.PublishTimeout)
	defer cancel()
	// Asked again after retryAfter (a stream leader that died takes the
	// ack with it); the op id as Nats-Msg-Id has JetStream keep it once.
	m := &nats.Msg{Subject: evSubject(kind, client), Data: data, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, ev.Op)
	for {
		actx, acancel := context.WithTimeout(ctx, retryAfter)
		ack, perr := s.js.PublishMsg(actx, m)
		acancel()
		if err = perr; err == nil {
			s.ix.saw(ack.Sequence)
			break
		}
		if ctx.Err() != nil {
			s.ix.forget(ev.Op)
			return 0, fmt.Errorf("%w: cluster write of %s for %s: %v", store.ErrUnavailable, kind, client, err)
		}
		select { // an error that came at once: a moment before asking again
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	select {
	case n := <-ch:
		return n, nil
	case <-ctx.Done():
		s.ix.forget(ev.Op)
		return 0, nil // written; this node's index will apply it
	}
}

func (s *Store) Touch(ctx context.Context, info store.SessionInfo) error {
	_, err := s.publishOp(ctx, "touch", info.ID, opEvent{Session: &info})
	return err
}

func (s *Store) Known(ctx context.Context, id string) (bool, error) { return s.ix.mem.Known(ctx, id) }

func (s *Store) Sessions(ctx context.Context) ([]store.SessionInfo, map[string]int, error) {
	s.sync(ctx)
	return s.ix.mem.Sessions(ctx)
}

// Pending reads the index: a message is there once the stream holds it
// (committed on its replicas), so nothing is ever provisional.
func (s *Store) Pending(ctx context.Context, id string, after uint64, limit int, _ bool) ([]store.Delivery, error) {
	return s.ix.mem.Pending(ctx, id, after, limit, false)
}

func (s *Store) Ack(ctx context.Context, id string, upto uint64) error {
	if last, _ := s.ix.mem.LastSeq(ctx, id); last == 0 {
		return nil // no mailbox: an ack must not make the id known
	}
	_, err := s.publishOp(ctx, "ack", id, opEvent{Upto: upto, At: time.Now().UTC()})
	return err
}

// LastSeq reads the index as it is. A client that moved from another node
// and resumes after a seq it got there is safe: the hub calls Touch first,
// and Touch returns once this node's index applied it, so the index holds
// every message the stream held before it.
func (s *Store) LastSeq(ctx context.Context, id string) (uint64, error) {
	return s.ix.mem.LastSeq(ctx, id)
}

func (s *Store) Unacked(ctx context.Context, id string) (int, error) {
	return s.ix.mem.Unacked(ctx, id)
}

func (s *Store) History(ctx context.Context, q store.HistoryQuery) ([]store.Message, bool, error) {
	s.sync(ctx)
	return s.ix.mem.History(ctx, q)
}

func (s *Store) Clear(ctx context.Context, id string, includeUnread bool) (int, error) {
	s.sync(ctx)
	return s.publishOp(ctx, "clear", id, opEvent{Unread: includeUnread})
}

// Prune drops old messages from this node's index; the stream drops its
// own by MaxAge.
func (s *Store) Prune(ctx context.Context, before time.Time) (int, error) {
	return s.ix.mem.Prune(ctx, before)
}

func (s *Store) MarkRead(ctx context.Context, client string, ids []string, upto uint64, at time.Time) (int, error) {
	s.sync(ctx)
	return s.publishOp(ctx, "read", client, opEvent{IDs: ids, Upto: upto, At: at})
}

func (s *Store) Receipts(ctx context.Context, sender string, ids []string) ([]store.Receipt, error) {
	s.sync(ctx)
	return s.ix.mem.Receipts(ctx, sender, ids)
}

func (s *Store) ReadStates(ctx context.Context, clients []string) (map[string]store.ReadState, error) {
	return s.ix.mem.ReadStates(ctx, clients)
}

// Attach has this node's cluster events told to its hub: mail for the ids
// it holds, takeovers, ids joining and leaving on other nodes.
func (s *Store) Attach(h Hub) {
	s.ix.mu.Lock()
	s.ix.onMail = h.Wake
	s.ix.mu.Unlock()
	s.pres.mu.Lock()
	s.pres.hub = h
	s.pres.mu.Unlock()
}

// Claim records that peer's connection is on this node, taking its id
// over from another node if one held it (that node closes its connection
// with 4409). It returns the peer the other node held, if any.
func (s *Store) Claim(ctx context.Context, peer protocol.Peer) (*protocol.Peer, error) {
	return s.pres.claimID(ctx, peer)
}

// Release says id's connection on this node ended.
func (s *Store) Release(id string) { s.pres.release(id) }

// RemotePeers lists the ids online on other nodes.
func (s *Store) RemotePeers() []protocol.Peer { return s.pres.peers() }

// RemoteOnline reports whether id is online on another node.
func (s *Store) RemoteOnline(id string) bool { return s.pres.online(id) }

// setupTimeout bounds the creation of the stream and the bucket: nodes of a
// NATS cluster started together take a few seconds to agree on a leader
// and to learn of each other, and a stream of 3 replicas needs all three.
const setupTimeout = time.Minute

// retry calls f until it succeeds or setupTimeout passes.
func retry(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		err := f(actx)
		acancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}
