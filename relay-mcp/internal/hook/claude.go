package hook

import (
	"fmt"
	"strings"
)

// Claude Code hook events relay-mcp answers.
const (
	EventSessionStart     = "SessionStart"
	EventUserPromptSubmit = "UserPromptSubmit"
	EventPostToolUse      = "PostToolUse"
	EventStop             = "Stop"
)

// Events lists the Claude Code events, in the order install writes them.
var Events = []string{EventSessionStart, EventUserPromptSubmit, EventPostToolUse, EventStop}

// ClaudeInput is the JSON Claude Code writes to a hook's stdin (the fields
// relay-mcp reads; others are ignored).
type ClaudeInput struct {
	SessionID      string `json:"session_id"`
	TranscriptPath string `json:"transcript_path,omitempty"`
	Cwd            string `json:"cwd,omitempty"`
	HookEventName  string `json:"hook_event_name"`
	Source         string `json:"source,omitempty"`    // SessionStart: startup, resume, clear, compact
	Prompt         string `json:"prompt,omitempty"`    // UserPromptSubmit
	ToolName       string `json:"tool_name,omitempty"` // PostToolUse
	// StopHookActive is set when Claude Code is already continuing because
	// of a Stop hook: blocking again would loop.
	StopHookActive bool `json:"stop_hook_active,omitempty"`
}

// ClaudeOutput is a hook's answer on stdout, in Claude Code's format.
type ClaudeOutput struct {
	// Decision "block" with Reason keeps a Stop from ending the turn: the
	// reason is given to the model.
	Decision string `json:"decision,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// SystemMessage is shown to the person, not the model.
	SystemMessage      string         `json:"systemMessage,omitempty"`
	HookSpecificOutput *ClaudeContext `json:"hookSpecificOutput,omitempty"`
}

// ClaudeContext adds text to the model's context (SessionStart,
// UserPromptSubmit, PostToolUse).
type ClaudeContext struct {
	HookEventName     string `json:"hookEventName"`
	AdditionalContext string `json:"additionalContext"`
}

// ClaudeOptions tune the Claude Code hook.
type ClaudeOptions struct {
	Self   string // this session's relay id
	Dir    string // the inbox directory, for the hooks' state file
	OnStop string // StopBlock, StopNotify (default) or StopOff
	// LinkNote is a line about the relay connection to add at
	// SessionStart and UserPromptSubmit (the relay cannot be reached, so
	// the mail shown may not be all), or "".
	LinkNote string
}

// Claude answers one Claude Code hook event from the mailbox. Messages it
// shows whole are marked read; an error marking them is returned with the
// answer (the caller still prints it: the model has the mail either way).
func Claude(in ClaudeInput, mb Mailbox, o ClaudeOptions) (*ClaudeOutput, error) {
	if o.OnStop == "" {
		o.OnStop = StopNotify
	}
	st := loadState(o.Dir)
	n := look(mb, o.Self, st)
	out := &ClaudeOutput{}
	var show []string
	var noticed bool
	if st.Wakes > 0 && (in.HookEventName == EventSessionStart || (in.HookEventName == EventUserPromptSubmit && !strings.HasPrefix(strings.TrimSpace(in.Prompt), "<task-notification>"))) {
		// The person is here: the wake listener may wake this session
		// again (a woken turn's prompt is a task notification, not this).
		st.Wakes = 0
		noticed = true // saves the state
	}
	switch in.HookEventName {
	case EventSessionStart, EventUserPromptSubmit:
		// A new turn: remind the model of everything unread, even if a
		// summary named it before.
		text, ids := present(o.Self, n.Unread)
		if in.HookEventName == EventSessionStart {
			intro := fmt.Sprintf("claude-relay: this session is %q on the relay; messages from other agent sessions will be added here as they arrive.", o.Self)
			if text == "" {
				text = intro
			} else {
				text = intro + "\n" + text
			}
		}
		if o.LinkNote != "" {
			if text == "" {
				text = o.LinkNote
			} else {
				text = o.LinkNote + "\n" + text
			}
		}
		if text != "" {
			out.HookSpecificOutput = &ClaudeContext{HookEventName: in.HookEventName, AdditionalContext: text}
			show = ids
			noticed = noticed || len(n.Unread) > 0
		}
	case EventPostToolUse:
		// After every tool call: only news, so a summary is not repeated
		// on each call while the model is busy.
		if len(n.Fresh) > 0 {
			text, ids := present(o.Self, n.Fresh)
			if ids == nil { // summarised: count all unread, not just the news
				text = Summary(n.Unread)
			}
			out.HookSpecificOutput = &ClaudeContext{HookEventName: in.HookEventName, AdditionalContext: text}
			show, noticed = ids, true
		}
	case EventStop:
		if len(n.Fresh) == 0 || o.OnStop == StopOff {
			break
		}
		switch {
		case o.OnStop == StopBlock && !in.StopHookActive:
			text, ids := present(o.Self, n.Fresh)
			if ids == nil {
				text = Summary(n.Unread)
			}
			out.Decision, out.Reason = "block", "New mail arrived on claude-relay before you finished. "+text
			show, noticed = ids, true
		default:
			// Notify the person; the model sees the mail at the next
			// prompt. Not noticed by the model: keep it fresh.
			out.SystemMessage = Summary(n.Fresh)
		}
	default:
		return out, fmt.Errorf("hook event %q is not one relay-mcp answers (use %v)", in.HookEventName, Events)
	}
	var err error
	if len(show) > 0 {
		err = mb.MarkRead(show...)
	}
	if noticed {
		if t := newest(n.Unread); t.After(st.NoticedUpTo) {
			st.NoticedUpTo = t
		}
		if serr := saveState(o.Dir, st); serr != nil && err == nil {
			err = serr
		}
	}
	return out, err
}
