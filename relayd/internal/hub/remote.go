package hub

import (
	"context"
	"fmt"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

// Remote is the rest of a cluster of relayd nodes, as this node's hub sees
// it (package cluster implements it): the ids online on other nodes, and
// this node's claim on the ids whose connection it holds. The cluster calls
// back Wake, TakenOver, RemoteJoined and RemoteLeft.
type Remote interface {
	// Claim makes this node the holder of peer's id; the node that held
	// it closes its connection with 4409. It returns that node's peer.
	Claim(ctx context.Context, peer protocol.Peer) (*protocol.Peer, error)
	// Release drops this node's claim on id, unless another took it.
	Release(id string)
	// RemotePeers lists the ids online on other nodes.
	RemotePeers() []protocol.Peer
	// RemoteOnline reports whether id is online on another node.
	RemoteOnline(id string) bool
}

// claimTimeout bounds a Join's claim on its id in the cluster.
const claimTimeout = 5 * time.Second

func (h *Hub) remoteOnline(id string) bool {
	return h.opts.Remote != nil && h.opts.Remote.RemoteOnline(id)
}

// claim takes c's id in the cluster; it returns the peer another node held.
func (h *Hub) claim(ctx context.Context, c *Conn) *protocol.Peer {
	if h.opts.Remote == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	prev, err := h.opts.Remote.Claim(ctx, c.peerInfo())
	if err != nil {
		// Served here anyway: the other nodes route its mail through the
		// stream, and only a takeover elsewhere would be missed.
		h.log.Warn("could not claim the client's id in the cluster", "client", c.id, "err", err)
	}
	return prev
}

// reclaim rewrites c's claim with its peer as it is now (a new status).
func (h *Hub) reclaim(ctx context.Context, c *Conn) {
	if h.opts.Remote != nil {
		h.claim(ctx, c)
	}
}

// Wake tells id's connection, if it is on this node, that mail is waiting.
func (h *Hub) Wake(id string) {
	h.mu.Lock()
	c := h.conns[id]
	h.mu.Unlock()
	if c != nil {
		c.wake()
	}
}

// TakenOver closes id's connection on this node with 4409: the id connected
// to another node of the cluster, and the client must not come back.
func (h *Hub) TakenOver(id string, by protocol.Peer) {
	h.mu.Lock()
	c := h.conns[id]
	h.mu.Unlock()
	if c == nil {
		return
	}
	if by.ConnectedSince.Before(c.peer.ConnectedSince) {
		// A hello that began before this connection's finished after it:
		// its node's writes stalled (a stream electing a leader), and its
		// client, tired of waiting, may have come here and gone from there.
		// The newest hello wins, as on one node: this connection stays and
		// takes the id back; the older one is closed by its own node when
		// it sees the claim. Both nodes compare the same two times, so they
		// agree and never flap.
		h.log.Info("an older hello for the client finished on another node; keeping this newer connection", "client", id, "other_host", by.Host, "other_pid", by.PID)
		go h.reclaim(context.Background(), c)
		return
	}
	h.stats.Replaced.Add(1)
	h.log.Info("client replaced on another node", "client", id, "new_host", by.Host, "new_pid", by.PID)
	c.kick(protocol.CloseReplaced, fmt.Sprintf("replaced by a newer connection for %s from host %q pid %d", id, by.Host, by.PID))
}

// RemoteJoined tells this node's clients that p came online on another node.
func (h *Hub) RemoteJoined(p protocol.Peer) {
	h.remotePresence(&protocol.Presence{Event: protocol.PresenceJoined, Peer: p})
}

// RemoteStatus tells this node's clients that p, on another node, set a
// new status line.
func (h *Hub) RemoteStatus(p protocol.Peer) {
	h.remotePresence(&protocol.Presence{Event: protocol.PresenceStatus, Peer: p})
}

// RemoteLeft tells this node's clients that p went offline on another node.
func (h *Hub) RemoteLeft(p protocol.Peer, reason string) {
	h.remotePresence(&protocol.Presence{Event: protocol.PresenceLeft, Peer: p, Reason: reason})
}

func (h *Hub) remotePresence(pr *protocol.Presence) {
	h.mu.Lock()
	if _, here := h.conns[pr.Peer.ID]; here {
		h.mu.Unlock() // its connection moved here: this node said so
		return
	}
	others := h.othersLocked(pr.Peer.ID)
	h.mu.Unlock()
	for _, o := range others {
		o.push(pr)
	}
}

// remotePeersLocked lists the ids online on other nodes but not here (a
// connection that moved here is listed once, as this node's).
func (h *Hub) remotePeersLocked() []protocol.Peer {
	if h.opts.Remote == nil {
		return nil
	}
	var out []protocol.Peer
	for _, p := range h.opts.Remote.RemotePeers() {
		if _, here := h.conns[p.ID]; !here {
			out = append(out, p)
		}
	}
	return out
}
