package server

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
)

//go:embed dashboard.html
var dashboardHTML []byte

// serveDashboard shows a page that polls /dashboard.json: who is online and
// how many messages flowed.
func (s *Server) serveDashboard(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'")
	w.Write(dashboardHTML)
}

type dashboard struct {
	health
	Peers []protocol.Peer `json:"peers"`
	Now   time.Time       `json:"now"`
}

func (s *Server) serveDashboardJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(dashboard{health: s.healthNow(), Peers: s.Hub.Peers(), Now: time.Now().UTC()})
}
