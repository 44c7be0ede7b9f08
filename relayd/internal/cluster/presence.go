package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claude-relay/claude-relay/protocol"
)

// Hub is what the cluster tells the local hub (hub.Hub implements it).
type Hub interface {
	// Wake: mail reached id's mailbox.
	Wake(id string)
	// TakenOver: another node claimed id; its connection here, if any,
	// must close with 4409 (replaced) and not come back.
	TakenOver(id string, by protocol.Peer)
	// RemoteJoined, RemoteStatus and RemoteLeft: an id came online, set a
	// new status line or went offline on another node.
	RemoteJoined(p protocol.Peer)
	RemoteStatus(p protocol.Peer)
	RemoteLeft(p protocol.Peer, reason string)
}

// presenceEntry is the value of an id's key in the presence bucket: which
// node holds its connection, and the peer as the others list it.
type presenceEntry struct {
	Node string        `json:"node"`
	Peer protocol.Peer `json:"peer"`
}

type claim struct {
	rev  uint64
	data []byte
}

// presence keeps this node's claims on the ids it holds, renewed before
// the bucket's TTL drops them, and follows the claims of the other nodes.
type presence struct {
	kv   jetstream.KeyValue
	node string
	ttl  time.Duration
	log  interface {
		Warn(string, ...any)
		Debug(string, ...any)
	}

	mu     sync.Mutex
	held   map[string]claim         // ids whose connection is on this node
	remote map[string]protocol.Peer // ids online on other nodes
	hub    Hub

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func openPresence(ctx context.Context, s *Store, js jetstream.JetStream) (*presence, error) {
	var kv jetstream.KeyValue
	err := retry(ctx, func(ctx context.Context) (err error) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: presenceBucket, Description: "claude-relay: which node holds each online id",
			TTL: s.opts.PresenceTTL, LimitMarkerTTL: s.opts.PresenceTTL, History: 1,
			Replicas: s.opts.Replicas, Storage: jetstream.FileStorage,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: create presence bucket %s: %w", presenceBucket, err)
	}
	return &presence{kv: kv, node: s.opts.Node, ttl: s.opts.PresenceTTL, log: s.log,
		held: map[string]claim{}, remote: map[string]protocol.Peer{}}, nil
}

func (p *presence) start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(2)
	go p.watchLoop(ctx)
	go p.renewLoop(ctx)
}

func (p *presence) stop() {
	if p.cancel == nil {
		return
	}
	p.mu.Lock()
	held := p.held
	p.held = map[string]claim{}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for id, c := range held {
		p.kv.Delete(ctx, id, jetstream.LastRevision(c.rev))
	}
	p.cancel()
	p.wg.Wait()
}

// claimID makes this node the holder of id by compare-and-set: whoever
// held it sees the new value and closes its connection. It returns the
// peer that held it on another node, if any.
func (p *presence) claimID(ctx context.Context, peer protocol.Peer) (*protocol.Peer, error) {
	data, err := json.Marshal(presenceEntry{Node: p.node, Peer: peer})
	if err != nil {
		return nil, err
	}
	for range 5 {
		var prev *protocol.Peer
		var rev uint64
		e, err := p.kv.Get(ctx, peer.ID)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			rev, err = p.kv.Create(ctx, peer.ID, data)
		case err != nil:
			return nil, fmt.Errorf("presence of %s: %w", peer.ID, err)
		default:
			var old presenceEntry
			if json.Unmarshal(e.Value(), &old) == nil && old.Node != p.node {
				prev = &old.Peer
			}
			rev, err = p.kv.Update(ctx, peer.ID, data, e.Revision())
		}
		if err == nil {
			p.mu.Lock()
			p.held[peer.ID] = claim{rev: rev, data: data}
			p.mu.Unlock()
			return prev, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("presence of %s: %w", peer.ID, err)
		}
		// Someone claimed it between our read and write: read again.
	}
	return nil, fmt.Errorf("presence of %s: claimed by others five times in a row", peer.ID)
}

// release drops this node's claim on id, unless another node took it.
func (p *presence) release(id string) {
	p.mu.Lock()
	c, ok := p.held[id]
	delete(p.held, id)
	p.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := p.kv.Delete(ctx, id, jetstream.LastRevision(c.rev)); err != nil {
		p.log.Debug("presence: release", "client", id, "err", err)
	}
}

// renewLoop rewrites each claim before the bucket's TTL drops it. A claim
// that fails to renew because another node took the id is dropped; the
// watch loop tells the hub.
func (p *presence) renewLoop(ctx context.Context) {
	defer p.wg.Done()
	t := time.NewTicker(p.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		held := make(map[string]claim, len(p.held))
		for id, c := range p.held {
			held[id] = c
		}
		p.mu.Unlock()
		for id, c := range held {
			rev, err := p.kv.Update(ctx, id, c.data, c.rev)
			p.mu.Lock()
			if cur, ok := p.held[id]; ok && cur.rev == c.rev {
				if err == nil {
					p.held[id] = claim{rev: rev, data: c.data}
				} else if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
					delete(p.held, id) // another node holds it now
				}
			}
			p.mu.Unlock()
		}
	}
}

// watchLoop follows every claim in the bucket.
func (p *presence) watchLoop(ctx context.Context) {
	defer p.wg.Done()
	for ctx.Err() == nil {
		w, err := p.kv.WatchAll(ctx)
		if err != nil {
			p.log.Warn("presence: cannot watch the bucket; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		for e := range w.Updates() {
			if e != nil {
				p.seen(e)
			}
		}
		w.Stop()
	}
}

func (p *presence) seen(e jetstream.KeyValueEntry) {
	id := e.Key()
	p.mu.Lock()
	hub := p.hub
	if e.Operation() != jetstream.KeyValuePut {
		old, was := p.remote[id]
		delete(p.remote, id)
		p.mu.Unlock()
		if was && hub != nil {
			hub.RemoteLeft(old, "left the cluster node it was on")
		}
		return
	}
	var v presenceEntry
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		p.mu.Unlock()
		return
	}
	if v.Node == p.node {
		delete(p.remote, id) // ours (a renewal or a claim made here)
		p.mu.Unlock()
		return
	}
	c, mine := p.held[id]
	if mine && c.rev > e.Revision() {
		p.mu.Unlock() // an older claim than ours: we took it over since
		return
	}
	delete(p.held, id)
	old, was := p.remote[id]
	p.remote[id] = v.Peer
	p.mu.Unlock()
	if hub == nil {
		return
	}
	if mine {
		hub.TakenOver(id, v.Peer)
	}
	switch {
	case !was:
		hub.RemoteJoined(v.Peer)
	case old.Status != v.Peer.Status:
		hub.RemoteStatus(v.Peer)
	}
}

func (p *presence) peers() []protocol.Peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]protocol.Peer, 0, len(p.remote))
	for _, peer := range p.remote {
		out = append(out, peer)
	}
	return out
}

func (p *presence) online(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.remote[id]
	return ok
}
