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
	// Waiting counts the messages held now for clients that are offline:
	// what a reconnect will deliver. messages_queued (from health) is the
	// running total since the relay started. null when the store cannot
	// be read.
	Waiting *int            `json:"waiting"`
	Peers   []protocol.Peer `json:"peers"`
	Now     time.Time       `json:"now"`
}

func (s *Server) serveDashboardJSON(w http.ResponseWriter, r *http.Request) {
	d := dashboard{health: s.healthNow(), Peers: s.Hub.Peers(), Now: time.Now().UTC()}
	if sessions, err := s.Hub.Sessions(r.Context()); err == nil {
		n := 0
		for _, ss := range sessions {
			if !ss.Online {
				n += ss.Queued
			}
		}
		d.Waiting = &n
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(d)
}
