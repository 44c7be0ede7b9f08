package server

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
)

// liveConn is what the pinger knows of a connection.
type liveConn struct {
	ws *websocket.Conn
	// lastFrame is when the client last sent a frame of its own (unix
	// nanoseconds), for IdleTimeout. Pongs do not count: a client stuck
	// in a loop still answers pings.
	lastFrame atomic.Int64
}

// track registers a live connection with the pinger.
func (s *Server) track(conn *hub.Conn, ws *websocket.Conn) *liveConn {
	lc := &liveConn{ws: ws}
	lc.lastFrame.Store(time.Now().UnixNano())
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if s.live == nil {
		s.live = map[*hub.Conn]*liveConn{}
		s.stopPing = make(chan struct{})
		s.pinging.Add(1)
		go s.pingLoop(s.stopPing)
	}
	s.live[conn] = lc
	return lc
}

func (s *Server) untrack(conn *hub.Conn) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	delete(s.live, conn)
}

// pingLoop is the keepalive of every connection: each PingInterval it drops
// clients silent for two intervals, closes those idle past IdleTimeout, and
// pings the rest. Each ping runs in a
// goroutine that ends with the pong; they are started in batches spread over
// half the interval, so ten thousand idle connections never hold ten
// thousand ping goroutines (and their stacks) at once.
func (s *Server) pingLoop(stop <-chan struct{}) {
	defer s.pinging.Done()
	const batch = 256
	t := time.NewTicker(s.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.liveMu.Lock()
		type pair struct {
			conn *hub.Conn
			ws   *websocket.Conn
		}
		due := make([]pair, 0, len(s.live))
		now := time.Now()
		for conn, lc := range s.live {
			if now.Sub(conn.LastSeen()) >= 2*s.PingInterval {
				conn.Kick(protocol.CloseIdle, fmt.Sprintf("no answer to pings for %s", 2*s.PingInterval))
				continue
			}
			if s.IdleTimeout > 0 && now.Sub(time.Unix(0, lc.lastFrame.Load())) >= s.IdleTimeout {
				conn.Kick(protocol.CloseIdle, fmt.Sprintf("idle: no frame for %s (the relay's --idle-timeout)", s.IdleTimeout))
				continue
			}
			due = append(due, pair{conn, lc.ws})
		}
		s.liveMu.Unlock()
		gap := s.PingInterval / 2 / time.Duration(len(due)/batch+1)
		for i, p := range due {
			if i > 0 && i%batch == 0 {
				select {
				case <-stop:
					return
				case <-time.After(gap):
				}
			}
			s.pinging.Add(1)
			go func() {
				defer s.pinging.Done()
				ctx, cancel := context.WithTimeout(context.Background(), s.PingInterval)
				defer cancel()
				if p.ws.Ping(ctx) == nil {
					p.conn.Touch()
				}
			}()
		}
	}
}
