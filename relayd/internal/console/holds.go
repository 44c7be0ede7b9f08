package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// The operator's holds on the page: who held each pair and since when,
// and the latest releases (who, when), as the store keeps them.

// shownReleases is how many of the latest releases the page lists; it
// shows those of the last hour.
const shownReleases = 5

type holdView struct {
	Pair       [2]string `json:"pair"`
	By         string    `json:"by"`
	At         time.Time `json:"at"`
	ReleasedBy string    `json:"released_by,omitempty"`
	ReleasedAt time.Time `json:"released_at,omitzero"`
}

func viewHolds(hs []store.Hold) []holdView {
	out := make([]holdView, 0, len(hs))
	for _, h := range hs {
		out = append(out, holdView(h))
	}
	return out
}

// released is the latest releases the store recorded.
func (c *Console) released(ctx context.Context) []holdView {
	hs, err := c.Hub.Store().Holds(ctx, shownReleases)
	if err != nil {
		c.Logger.Warn("console: the operator's holds not read", "err", err)
	}
	out := []holdView{}
	for _, h := range hs {
		if !h.Standing() {
			out = append(out, holdView(h))
		}
	}
	return out
}

// operatorID is the id of the operator named as (by default "operator").
func operatorID(as string) (string, error) {
	name := strings.TrimSpace(as)
	if name == "" {
		name = "operator"
	}
	id := protocol.PersonPrefix + name
	if err := protocol.ValidateID(id); err != nil {
		return "", fmt.Errorf("the operator name must be letters, digits, . _ - : %w", err)
	}
	return id, nil
}

func (c *Console) serveHold(hold bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Pair [2]string `json:"pair"`
			As   string    `json:"as"` // the operator's name, as for a post
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&p); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		for _, id := range p.Pair {
			if err := protocol.ValidateID(id); err != nil {
				http.Error(w, "bad pair: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		by, err := operatorID(p.As)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if hold {
			err = c.Hub.Hold(r.Context(), p.Pair[0], p.Pair[1], by)
		} else {
			err = c.Hub.Release(r.Context(), p.Pair[0], p.Pair[1], by)
		}
		res := map[string]any{"holds": viewHolds(c.Hub.Holds()), "released": c.released(r.Context())}
		if err != nil {
			// Enforced (or lifted) all the same; the page says what a
			// restart would undo.
			res["error"] = err.Error()
		}
		writeJSON(w, res)
	}
}
