package server

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

type health struct {
	Status   string  `json:"status"`
	Version  string  `json:"version"`
	Proto    int     `json:"proto"`
	UptimeS  float64 `json:"uptime_s"`
	Online   int     `json:"peers_online"`
	Sent     int64   `json:"messages_sent"`
	Queued   int64   `json:"messages_queued"`
	Unknown  int64   `json:"recipients_unknown"`
	StoreErr int64   `json:"store_errors"`
}

func (s *Server) healthNow() health {
	st := s.Hub.Stats()
	status := "ok"
	if st.StoreFailing.Load() {
		status = "degraded" // the last store write failed: sends are refused
	}
	return health{
		Status: status, Version: s.Version, Proto: protocol.Version,
		UptimeS: time.Since(s.started).Round(time.Millisecond).Seconds(),
		Online:  s.Hub.Online(), Sent: st.Sent.Load(), Queued: st.Queued.Load(),
		Unknown: st.Unknown.Load(), StoreErr: st.StoreErrors.Load(),
	}
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	h := s.healthNow()
	if h.Status != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(h)
}
