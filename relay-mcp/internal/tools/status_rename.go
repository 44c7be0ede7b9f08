package tools

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/link"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/registry"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// SetStatusArgs are relay_set_status's parameters.
type SetStatusArgs struct {
	Status string `json:"status" jsonschema:"one line: what this session is working on; empty clears it"`
}

func (d *Deps) setStatus(ctx context.Context, _ *mcp.CallToolRequest, a SetStatusArgs) (*mcp.CallToolResult, any, error) {
	s := strings.TrimSpace(a.Status)
	if len(s) > protocol.MaxStatusBytes {
		return errResult(fmt.Sprintf("Not set: the status is %d bytes; the limit is %d. One line of what you are doing.", len(s), protocol.MaxStatusBytes)), nil, nil
	}
	if strings.ContainsAny(s, "\r\n\t") {
		return errResult("Not set: the status must be one line."), nil, nil
	}
	err := d.Link.SetStatus(ctx, s)
	var re *link.RelayError
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe):
		return errResult("Not set: " + pe.Message + "."), nil, nil
	case errors.As(err, &re):
		return errResult("Not set: " + err.Error()), nil, nil
	case err != nil:
		return textResult("Status kept; peers see it once the relay is reachable (" + err.Error() + ")."), map[string]any{"status": s, "shown": false}, nil
	case s == "":
		return textResult("Status cleared."), map[string]any{"status": "", "shown": true}, nil
	}
	return textResult("Status set; peers see it in relay_peers: " + s), map[string]any{"status": s, "shown": true}, nil
}

// ---- relay_rename

// RenameArgs are relay_rename's parameters.
type RenameArgs struct {
	ID string `json:"id" jsonschema:"the new id (A-Z a-z 0-9 . _ -, up to 64)"`
}

func (d *Deps) rename(ctx context.Context, _ *mcp.CallToolRequest, a RenameArgs) (*mcp.CallToolResult, any, error) {
	id := strings.TrimSpace(a.ID)
	if err := protocol.ValidateID(id); err != nil {
		return errResult("Not renamed: " + strings.TrimPrefix(err.Error(), string(protocol.CodeBadID)+": ")), nil, nil
	}
	dir := filepath.Join(filepath.Dir(d.Inbox.Dir()), id)
	res, err := d.Link.Rename(ctx, id, dir)
	if !res.Applied {
		return errResult("Not renamed: " + err.Error()), nil, nil
	}
	var warn []string
	if err != nil {
		warn = append(warn, err.Error())
	}
	if d.Registry != nil {
		if rerr := d.reregister(res.Old, id); rerr != nil {
			warn = append(warn, "the session registry still shows the old id: "+rerr.Error())
		}
	}
	txt := fmt.Sprintf("This session is now %s (was %s).", res.New, res.Old)
	if res.Moved > 0 {
		txt += fmt.Sprintf(" %d unread message(s) for %s came along: relay_receive shows them.", res.Moved, res.Old)
	}
	txt += fmt.Sprintf(" Mail sent to %s from now on waits for %s (its senders see \"queued\"); a restart of this session comes back as its configured id.", res.Old, res.Old)
	if len(warn) > 0 {
		txt += " Note: " + strings.Join(warn, "; ") + "."
	}
	return textResult(txt), map[string]any{"id": res.New, "old_id": res.Old, "moved": res.Moved}, nil
}

// reregister moves this process's registry entry from old to id.
func (d *Deps) reregister(old, id string) error {
	pid := os.Getpid()
	s := registry.Session{Host: d.Host, PID: pid}
	if ls, err := d.Registry.List(); err == nil {
		for _, x := range ls {
			if x.ID == old && x.PID == pid {
				s = x
			}
		}
	}
	if err := d.Registry.SetOffline(old, pid); err != nil {
		return err
	}
	s.ID, s.Online = id, true
	return d.Registry.Register(s)
}
