// Package scriptedapi holds scripted stand-ins for the model APIs that the
// real agent CLIs talk to, so end-to-end tests can drive those CLIs offline
// on loopback. Every request a CLI sends is recorded: it is exactly what
// the model would read, so a test asserts on it. A script decides what the
// "model" answers: text, or a tool call.
package scriptedapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Anthropic is a stand-in for the Anthropic Messages API (POST
// /v1/messages with stream: true, answered with server-sent events). A path
// prefix tells sessions apart: a CLI whose ANTHROPIC_BASE_URL is
// URL("CC-1") sends to /CC-1/v1/messages and its requests are recorded
// under "CC-1".
type Anthropic struct {
	stand[Request]
}

// Script answers one request of a session: what the model says next.
type Script func(r *Request) Reply

// Reply is one assistant message: optional text, then optional tool calls.
// StopReason is derived: "tool_use" when ToolUses are present, else
// "end_turn".
type Reply struct {
	Text     string
	ToolUses []ToolUse
	// Delay holds the answer back (a slow model).
	Delay time.Duration
}

// ToolUse is a tool call the model makes.
type ToolUse struct {
	ID    string // defaults to a fresh id
	Name  string // as the CLI names it: mcp__relay__relay_send
	Input any    // marshalled to JSON
}

// Request is one request the CLI sent, as received.
type Request struct {
	Session string    // the path prefix, "" for none
	Path    string    // the path after the prefix: /v1/messages
	At      time.Time // when it arrived
	Raw     []byte
	Body    MessagesRequest
}

// MessagesRequest is the part of a Messages API request the tests read.
type MessagesRequest struct {
	Model    string          `json:"model"`
	Stream   bool            `json:"stream"`
	System   json.RawMessage `json:"system,omitempty"`
	Messages []Message       `json:"messages"`
	Tools    []struct {
		Name string `json:"name"`
	} `json:"tools,omitempty"`
}

// Message is one message of the conversation; Content is a string or a
// list of blocks on the wire, always blocks here.
type Message struct {
	Role    string  `json:"role"`
	Content []Block `json:"content"`
}

// Block is a content block.
type Block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`
	// Content of a tool_result: a string or a list of blocks on the wire,
	// always blocks here.
	Content []Block `json:"-"`
}

// UnmarshalJSON accepts a string or a list of blocks.
func (m *Message) UnmarshalJSON(b []byte) error {
	var raw struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	m.Role = raw.Role
	var err error
	m.Content, err = blocks(raw.Content)
	return err
}

// UnmarshalJSON reads a block, with a tool_result's content as blocks.
func (bl *Block) UnmarshalJSON(b []byte) error {
	type plain Block
	var raw struct {
		plain
		Content json.RawMessage `json:"content,omitempty"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*bl = Block(raw.plain)
	var err error
	bl.Content, err = blocks(raw.Content)
	return err
}

func blocks(raw json.RawMessage) ([]Block, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []Block{{Type: "text", Text: s}}, nil
	}
	var bs []Block
	if err := json.Unmarshal(raw, &bs); err != nil {
		return nil, err
	}
	return bs, nil
}

// Text is the text of the blocks (a tool_result's nested text included),
// joined with newlines.
func Text(bs []Block) string {
	var parts []string
	for _, b := range bs {
		switch b.Type {
		case "text":
			parts = append(parts, b.Text)
		case "tool_result":
			parts = append(parts, Text(b.Content))
		}
	}
	return strings.Join(parts, "\n")
}

// LastUser is the last user message of the request (nil if none).
func (r *Request) LastUser() *Message {
	for i := len(r.Body.Messages) - 1; i >= 0; i-- {
		if r.Body.Messages[i].Role == "user" {
			return &r.Body.Messages[i]
		}
	}
	return nil
}

// LastUserText is the text of the last user message.
func (r *Request) LastUserText() string {
	if m := r.LastUser(); m != nil {
		return Text(m.Content)
	}
	return ""
}

// AllText is the text of every message of the request, in order.
func (r *Request) AllText() string {
	var parts []string
	for _, m := range r.Body.Messages {
		parts = append(parts, Text(m.Content))
	}
	return strings.Join(parts, "\n")
}

// ToolResult returns the tool_result block answering the tool call id, if
// the request holds it.
func (r *Request) ToolResult(id string) (Block, bool) {
	for _, m := range r.Body.Messages {
		for _, b := range m.Content {
			if b.Type == "tool_result" && b.ToolUseID == id {
				return b, true
			}
		}
	}
	return Block{}, false
}

// HasTool reports whether the request offers the model the named tool.
func (r *Request) HasTool(name string) bool {
	for _, t := range r.Body.Tools {
		if t.Name == name {
			return true
		}
	}
	return false
}

// NewAnthropic starts the stand-in on a loopback port. Sessions without a
// script answer "ok" and end the turn.
func NewAnthropic() (*Anthropic, error) {
	a := &Anthropic{}
	if err := a.start(a); err != nil {
		return nil, err
	}
	return a, nil
}

// URL is the base URL for a session: ANTHROPIC_BASE_URL.
func (a *Anthropic) URL(sess string) string { return a.root(sess) }

// ServeHTTP answers /PREFIX/v1/messages (streaming or not) and
// /PREFIX/v1/messages/count_tokens.
func (a *Anthropic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sess, path := splitPath(r.URL.Path, "/v1/")
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch {
	case r.Method == http.MethodPost && path == "/v1/messages/count_tokens":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"input_tokens":%d}`, len(raw)/4+1)
		return
	case r.Method == http.MethodPost && path == "/v1/messages":
	default:
		// Anything else a CLI asks for (model lists, telemetry): nothing.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"type":"error","error":{"type":"not_found_error","message":"not scripted"}}`)
		return
	}
	req := &Request{Session: sess, Path: path, At: time.Now(), Raw: raw}
	reply, ok := a.take(w, r, sess, req, raw, &req.Body)
	if !ok {
		return
	}
	if req.Body.Stream {
		writeSSE(w, req.Body.Model, reply)
	} else {
		writeJSON(w, req.Body.Model, reply)
	}
}

var idSeq struct {
	sync.Mutex
	n int
}

func nextID(prefix string) string {
	idSeq.Lock()
	defer idSeq.Unlock()
	idSeq.n++
	return fmt.Sprintf("%s_%06d", prefix, idSeq.n)
}

func (r *Reply) fill() {
	for i := range r.ToolUses {
		if r.ToolUses[i].ID == "" {
			r.ToolUses[i].ID = nextID("toolu")
		}
		if r.ToolUses[i].Input == nil {
			r.ToolUses[i].Input = map[string]any{}
		}
	}
}

func (r *Reply) stopReason() string {
	if len(r.ToolUses) > 0 {
		return "tool_use"
	}
	return "end_turn"
}

func usage() map[string]any {
	return map[string]any{"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
}

func writeSSE(w http.ResponseWriter, model string, rep Reply) {
	rep.fill()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fl, _ := w.(http.Flusher)
	event := func(name string, data map[string]any) {
		data["type"] = name
		b, _ := json.Marshal(data)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
	}
	event("message_start", map[string]any{"message": map[string]any{
		"id": nextID("msg"), "type": "message", "role": "assistant", "model": model,
		"content": []any{}, "stop_reason": nil, "stop_sequence": nil, "usage": usage(),
	}})
	idx := 0
	if rep.Text != "" || len(rep.ToolUses) == 0 {
		event("content_block_start", map[string]any{"index": idx, "content_block": map[string]any{"type": "text", "text": ""}})
		event("content_block_delta", map[string]any{"index": idx, "delta": map[string]any{"type": "text_delta", "text": rep.Text}})
		event("content_block_stop", map[string]any{"index": idx})
		idx++
	}
	for _, tu := range rep.ToolUses {
		in, _ := json.Marshal(tu.Input)
		event("content_block_start", map[string]any{"index": idx, "content_block": map[string]any{"type": "tool_use", "id": tu.ID, "name": tu.Name, "input": map[string]any{}}})
		event("content_block_delta", map[string]any{"index": idx, "delta": map[string]any{"type": "input_json_delta", "partial_json": string(in)}})
		event("content_block_stop", map[string]any{"index": idx})
		idx++
	}
	event("message_delta", map[string]any{"delta": map[string]any{"stop_reason": rep.stopReason(), "stop_sequence": nil}, "usage": map[string]any{"output_tokens": 5}})
	event("message_stop", map[string]any{})
	if fl != nil {
		fl.Flush()
	}
}

func writeJSON(w http.ResponseWriter, model string, rep Reply) {
	rep.fill()
	var content []any
	if rep.Text != "" || len(rep.ToolUses) == 0 {
		content = append(content, map[string]any{"type": "text", "text": rep.Text})
	}
	for _, tu := range rep.ToolUses {
		content = append(content, map[string]any{"type": "tool_use", "id": tu.ID, "name": tu.Name, "input": tu.Input})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"id": nextID("msg"), "type": "message", "role": "assistant", "model": model,
		"content": content, "stop_reason": rep.stopReason(), "stop_sequence": nil, "usage": usage(),
	})
}

// ErrNoToolResult is returned by ToolResultText when the request does not
// answer the tool call.
var ErrNoToolResult = errors.New("the request holds no tool_result for that tool call")

// ToolResultText returns the text the model reads as the result of tool
// call id, and whether the CLI marked it an error.
func (r *Request) ToolResultText(id string) (string, bool, error) {
	b, ok := r.ToolResult(id)
	if !ok {
		return "", false, ErrNoToolResult
	}
	return Text(b.Content), b.IsError, nil
}
