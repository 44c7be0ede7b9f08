package server

import (
	"net/http"
	"sync/atomic"

	"github.com/claude-relay/claude-relay/relayd/internal/metrics"
)

// counters are the few numbers only the server sees; the hub counts the rest.
type counters struct {
	sockets     atomic.Int64 // open WebSocket connections
	messagesOut atomic.Int64 // message frames written to clients
}

// metricsHandler serves GET /metrics from the server's registry (Metrics, or
// one of its own). With a token configured it needs the token in an
// Authorization: Bearer header, like the dashboard's data: the numbers say
// how busy the relay is and who is around. /healthz stays open so a
// service manager can probe it without a secret.
func (s *Server) metricsHandler() http.Handler {
	if s.Metrics == nil {
		s.Metrics = metrics.New()
	}
	if err := s.Metrics.Watch(metrics.Source{
		Version: s.Version, Started: s.started, Hub: s.Hub,
		Sockets: s.counters.sockets.Load, MessagesOut: s.counters.messagesOut.Load,
	}); err != nil {
		s.Logger.Error("metrics unavailable", "err", err)
	}
	h := s.Metrics.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.authenticate(w, r, false); !ok {
			return
		}
		h.ServeHTTP(w, r)
	})
}
