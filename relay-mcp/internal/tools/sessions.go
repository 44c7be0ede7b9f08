package tools

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// SessionOut is one session in relay_sessions' structured content.
type SessionOut struct {
	ID       string    `json:"id"`
	Online   bool      `json:"online"`
	Local    bool      `json:"local,omitempty"` // in this machine's registry
	Host     string    `json:"host,omitempty"`
	PID      int       `json:"pid,omitempty"`
	Cwd      string    `json:"cwd,omitempty"`
	Agent    string    `json:"agent,omitempty"`
	LastSeen time.Time `json:"last_seen"`
	Queued   int       `json:"queued,omitempty"`
}

func (d *Deps) sessions(ctx context.Context, _ *mcp.CallToolRequest, _ NoArgs) (*mcp.CallToolResult, any, error) {
	byID := map[string]*SessionOut{}
	var notes []string
	if d.Registry != nil {
		ls, err := d.Registry.List()
		if err != nil {
			notes = append(notes, "local registry unreadable: "+err.Error())
		}
		for _, s := range ls {
			byID[s.ID] = &SessionOut{ID: s.ID, Online: s.Online, Local: true, Host: s.Host, PID: s.PID, Cwd: s.Cwd, Agent: s.Agent, LastSeen: s.LastSeen}
		}
	}
	rs, err := d.Link.Sessions(ctx)
	if err != nil {
		notes = append(notes, "relay not asked ("+err.Error()+"); local sessions only")
	}
	for _, s := range rs {
		o := byID[s.ID]
		if o == nil {
			o = &SessionOut{ID: s.ID}
			byID[s.ID] = o
		}
		// The relay knows who is connected; the registry may hold a stale
		// "online" from a process that died without saying so.
		o.Online = s.Online
		if s.LastSeen.After(o.LastSeen) {
			o.LastSeen = s.LastSeen
		}
		o.Queued = s.Queued
		for _, kv := range []struct {
			dst *string
			v   string
		}{{&o.Host, s.Host}, {&o.Cwd, s.Cwd}, {&o.Agent, s.Agent}} {
			if *kv.dst == "" {
				*kv.dst = kv.v
			}
		}
		if o.PID == 0 {
			o.PID = s.PID
		}
	}
	out := struct {
		Sessions []SessionOut `json:"sessions"`
	}{Sessions: []SessionOut{}}
	for _, o := range byID {
		out.Sessions = append(out.Sessions, *o)
	}
	sort.Slice(out.Sessions, func(i, j int) bool {
		a, b := out.Sessions[i], out.Sessions[j]
		if a.Online != b.Online {
			return a.Online
		}
		return a.ID < b.ID
	})
	now := d.Now()
	self := d.Link.ClientID()
	var b strings.Builder
	online := 0
	for _, s := range out.Sessions {
		if s.Online {
			online++
		}
	}
	fmt.Fprintf(&b, "%d session(s), %d online.", len(out.Sessions), online)
	for _, n := range notes {
		b.WriteString(" Note: " + n + ".")
	}
	for _, s := range out.Sessions {
		state := "offline"
		if s.Online {
			state = "online"
		}
		fmt.Fprintf(&b, "\n- %s", s.ID)
		if s.ID == self {
			b.WriteString(" (you)")
		}
		fmt.Fprintf(&b, " %s", state)
		if s.Agent != "" {
			b.WriteString(" agent=" + s.Agent)
		}
		if s.Host != "" {
			b.WriteString(" host=" + s.Host)
		}
		if s.Cwd != "" {
			b.WriteString(" cwd=" + s.Cwd)
		}
		if !s.Online {
			b.WriteString(" last seen " + ago(now, s.LastSeen))
		}
		if s.Queued > 0 {
			fmt.Fprintf(&b, " (%d waiting for it)", s.Queued)
		}
	}
	return textResult(b.String()), out, nil
}

// ---- relay_clear_history

// ClearArgs are relay_clear_history's parameters.
type ClearArgs struct {
	IncludeUnread bool `json:"include_unread,omitempty" jsonschema:"also drop messages not read yet"`
}

func (d *Deps) clearHistory(ctx context.Context, _ *mcp.CallToolRequest, a ClearArgs) (*mcp.CallToolResult, any, error) {
	if why := d.orphaned(); why != "" {
		return errResult("Not cleared: " + why), nil, nil
	}
	local, err := d.Inbox.Clear(a.IncludeUnread)
	if err != nil {
		return errResult("Could not clear the local inbox: " + err.Error()), nil, nil
	}
	out := struct {
		Local  int  `json:"cleared_local"`
		Relay  int  `json:"cleared_relay"`
		Synced bool `json:"relay_cleared"`
	}{Local: local}
	what := "read"
	if a.IncludeUnread {
		what = "read and unread"
	}
	txt := fmt.Sprintf("Cleared %d %s message(s) from the local inbox", local, what)
	n, err := d.Link.Clear(ctx, a.IncludeUnread)
	if err != nil {
		txt += "; the relay's mailbox was not cleared (" + err.Error() + ")"
	} else {
		out.Relay, out.Synced = n, true
		txt += fmt.Sprintf(" and %d from the relay's mailbox", n)
	}
	_, unread, _ := d.Inbox.Counts()
	txt += fmt.Sprintf(". Unread kept: %d.", unread)
	return textResult(txt), out, nil
}
