package scriptedapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// Responses is a stand-in for the OpenAI Responses API as Codex CLI uses
// it: POST /v1/responses with stream: true, answered with the server-sent
// events response.created, response.output_item.added and .done for each
// output item (a "message" with output_text, or a "function_call"), and
// response.completed. A path prefix tells sessions apart: a Codex whose
// provider base_url is URL("CODEX") sends to /CODEX/v1/responses.
//
// Codex 0.169 offers an MCP server's tools in a namespace ("mcp__relay",
// tools "relay_send" …) and expects a call to name both; a ToolUse named
// "mcp__relay__relay_send" is sent that way.
type Responses struct {
	stand[ResponsesRequest]
}

// ResponsesRequest is one request Codex sent, as received.
type ResponsesRequest struct {
	Session string    // the path prefix, "" for none
	Path    string    // /v1/responses
	At      time.Time // when it arrived
	Raw     []byte
	Body    struct {
		Model  string          `json:"model"`
		Stream bool            `json:"stream"`
		Input  []ResponsesItem `json:"input"`
		Tools  []ResponsesTool `json:"tools"`
	}
}

// ResponsesItem is one input item: a message, a function call the model
// made, or a function call's output.
type ResponsesItem struct {
	Type      string          `json:"type"` // message, function_call, function_call_output, reasoning …
	Role      string          `json:"role,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"` // message: a string or [{type, text}]
	Name      string          `json:"name,omitempty"`
	Namespace string          `json:"namespace,omitempty"`
	Arguments string          `json:"arguments,omitempty"`
	CallID    string          `json:"call_id,omitempty"`
	Output    json.RawMessage `json:"output,omitempty"` // function_call_output: a string or [{type, text}]
}

// ResponsesTool is a tool offered to the model; a namespace holds tools.
type ResponsesTool struct {
	Type  string          `json:"type"` // function, namespace, web_search …
	Name  string          `json:"name"`
	Tools []ResponsesTool `json:"tools,omitempty"`
}

// partsText is the text of a string or of a list of {type, text} parts.
func partsText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Text string `json:"text"`
	}
	json.Unmarshal(raw, &parts)
	var out []string
	for _, p := range parts {
		out = append(out, p.Text)
	}
	return strings.Join(out, "\n")
}

// Text is the item's text: a message's content or a function call's output.
func (it ResponsesItem) Text() string {
	if it.Type == "function_call_output" {
		return partsText(it.Output)
	}
	return partsText(it.Content)
}

// LastUserText is the text of the last user message.
func (r *ResponsesRequest) LastUserText() string {
	for i := len(r.Body.Input) - 1; i >= 0; i-- {
		if it := r.Body.Input[i]; it.Type == "message" && it.Role == "user" {
			return it.Text()
		}
	}
	return ""
}

// AllText is the text of every input item, in order.
func (r *ResponsesRequest) AllText() string {
	var parts []string
	for _, it := range r.Body.Input {
		parts = append(parts, it.Text())
	}
	return strings.Join(parts, "\n")
}

// Outputs are the outputs of the function calls in the request, by call id.
func (r *ResponsesRequest) Outputs() map[string]string {
	out := map[string]string{}
	for _, it := range r.Body.Input {
		if it.Type == "function_call_output" {
			out[it.CallID] = it.Text()
		}
	}
	return out
}

// HasTool reports whether the request offers the tool, given as Codex's
// model calls it: "exec_command", or "mcp__relay__relay_send" for a tool
// in a namespace.
func (r *ResponsesRequest) HasTool(name string) bool {
	ns, fn := splitNamespace(name)
	for _, t := range r.Body.Tools {
		if ns == "" && t.Type == "function" && t.Name == fn {
			return true
		}
		if ns != "" && t.Type == "namespace" && t.Name == ns {
			for _, tt := range t.Tools {
				if tt.Name == fn {
					return true
				}
			}
		}
	}
	return false
}

// splitNamespace cuts "mcp__relay__relay_send" into "mcp__relay" and
// "relay_send"; other names have no namespace.
func splitNamespace(name string) (ns, fn string) {
	if !strings.HasPrefix(name, "mcp__") {
		return "", name
	}
	i := strings.LastIndex(name, "__")
	if i <= len("mcp") {
		return "", name
	}
	return name[:i], name[i+2:]
}

// NewResponses starts the stand-in on a loopback port.
func NewResponses() (*Responses, error) {
	s := &Responses{}
	if err := s.start(s); err != nil {
		return nil, err
	}
	return s, nil
}

// URL is a session's base URL: the base_url of Codex's model provider.
func (s *Responses) URL(sess string) string { return s.root(sess) + "/v1" }

// ServeHTTP answers POST /PREFIX/v1/responses.
func (s *Responses) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sess, path := splitPath(r.URL.Path, "/v1/")
	if r.Method != http.MethodPost || path != "/v1/responses" {
		// Anything else (a WebSocket upgrade, model lists): not here, so
		// Codex falls back to HTTP and its defaults.
		http.Error(w, `{"error":{"message":"not scripted","type":"not_found"}}`, http.StatusNotFound)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := &ResponsesRequest{Session: sess, Path: path, At: time.Now(), Raw: raw}
	rep, ok := s.take(w, r, sess, req, raw, &req.Body)
	if !ok {
		return
	}
	writeResponsesSSE(w, rep)
}

func writeResponsesSSE(w http.ResponseWriter, rep Reply) {
	rep.fill()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	id := nextID("resp")
	event := func(name string, data map[string]any) {
		data["type"] = name
		b, _ := json.Marshal(data)
		sseEvent(w, name, b)
	}
	event("response.created", map[string]any{"response": map[string]any{"id": id, "status": "in_progress"}})
	var items []map[string]any
	if rep.Text != "" || len(rep.ToolUses) == 0 {
		items = append(items, map[string]any{"type": "message", "id": nextID("msg"), "role": "assistant", "status": "completed",
			"content": []any{map[string]any{"type": "output_text", "text": rep.Text, "annotations": []any{}}}})
	}
	for _, tu := range rep.ToolUses {
		args, _ := json.Marshal(tu.Input)
		it := map[string]any{"type": "function_call", "id": nextID("fc"), "call_id": tu.ID, "arguments": string(args), "status": "completed"}
		it["namespace"], it["name"] = splitNamespace(tu.Name)
		if it["namespace"] == "" {
			delete(it, "namespace")
		}
		items = append(items, it)
	}
	for i, it := range items {
		event("response.output_item.added", map[string]any{"output_index": i, "item": it})
		event("response.output_item.done", map[string]any{"output_index": i, "item": it})
	}
	event("response.completed", map[string]any{"response": map[string]any{"id": id, "status": "completed",
		"usage": map[string]any{"input_tokens": 10, "input_tokens_details": nil, "output_tokens": 5, "output_tokens_details": nil, "total_tokens": 15}}})
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
}
