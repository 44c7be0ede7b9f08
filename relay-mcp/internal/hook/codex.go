package hook

import (
	"encoding/json"
	"fmt"
)

// CodexNotification is what Codex passes to its `notify` program as the
// last argument when a turn ends.
type CodexNotification struct {
	Type     string `json:"type"` // "agent-turn-complete"
	ThreadID string `json:"thread-id,omitempty"`
	TurnID   string `json:"turn-id,omitempty"`
	Cwd      string `json:"cwd,omitempty"`
}

// Codex answers Codex's notify: Codex ignores what the program prints and
// has no way for it to add context, so all a hook can do is tell the
// person that mail is waiting (the model reads it when asked, with
// relay_receive). It returns that line, or "" when there is no news.
// Nothing is marked read: the model has not seen it.
func Codex(raw []byte, mb Mailbox, self, dir string) (string, error) {
	var n CodexNotification
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", fmt.Errorf("codex notification is not JSON: %w", err)
		}
	}
	if n.Type != "" && n.Type != "agent-turn-complete" {
		return "", nil
	}
	st := loadState(dir)
	got := look(mb, self, st)
	if len(got.Fresh) == 0 {
		return "", nil
	}
	st.NoticedUpTo = newest(got.Unread)
	err := saveState(dir, st)
	return fmt.Sprintf("%s — ask Codex to check the relay (relay_receive).", Summary(got.Unread)), err
}
