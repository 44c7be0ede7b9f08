package scriptedapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// Gemini is a stand-in for the Gemini API as Gemini CLI uses it: POST
// /v1beta/models/MODEL:streamGenerateContent?alt=sse, answered with
// server-sent events whose data is a GenerateContentResponse (candidates
// with content parts: text, or functionCall). A path prefix tells sessions
// apart: a Gemini CLI whose GOOGLE_GEMINI_BASE_URL is URL("GEM") sends to
// /GEM/v1beta/…. Non-streaming generateContent (the CLI's own helpers,
// such as its model router) is answered with Reply.Text and not recorded.
type Gemini struct {
	stand[GeminiRequest]
}

// GeminiRequest is one streamGenerateContent request, as received.
type GeminiRequest struct {
	Session string    // the path prefix, "" for none
	Model   string    // from the path
	At      time.Time // when it arrived
	Raw     []byte
	Body    struct {
		Contents []GeminiContent `json:"contents"`
		Tools    []struct {
			FunctionDeclarations []struct {
				Name string `json:"name"`
			} `json:"functionDeclarations"`
		} `json:"tools"`
	}
}

// GeminiContent is one turn of the conversation.
type GeminiContent struct {
	Role  string       `json:"role"` // user, model
	Parts []GeminiPart `json:"parts"`
}

// GeminiPart is a text, a function call or a function response.
type GeminiPart struct {
	Text         string `json:"text,omitempty"`
	FunctionCall *struct {
		ID   string          `json:"id,omitempty"`
		Name string          `json:"name"`
		Args json.RawMessage `json:"args,omitempty"`
	} `json:"functionCall,omitempty"`
	FunctionResponse *struct {
		ID       string          `json:"id,omitempty"`
		Name     string          `json:"name"`
		Response json.RawMessage `json:"response,omitempty"`
	} `json:"functionResponse,omitempty"`
}

// text is the part's text, a function response's as its JSON.
func (p GeminiPart) text() string {
	if p.FunctionResponse != nil {
		return string(p.FunctionResponse.Response)
	}
	return p.Text
}

// contentText joins the text of a turn's parts.
func contentText(c GeminiContent) string {
	var out []string
	for _, p := range c.Parts {
		if t := p.text(); t != "" {
			out = append(out, t)
		}
	}
	return strings.Join(out, "\n")
}

// LastUserText is the text of the last user turn (a function response
// included, as JSON).
func (r *GeminiRequest) LastUserText() string {
	for i := len(r.Body.Contents) - 1; i >= 0; i-- {
		if r.Body.Contents[i].Role == "user" {
			return contentText(r.Body.Contents[i])
		}
	}
	return ""
}

// AllText is the text of every turn, in order.
func (r *GeminiRequest) AllText() string {
	var parts []string
	for _, c := range r.Body.Contents {
		parts = append(parts, contentText(c))
	}
	return strings.Join(parts, "\n")
}

// FunctionResponses are the responses to function calls in the request's
// last turn, by function name, as JSON.
func (r *GeminiRequest) FunctionResponses() map[string]string {
	out := map[string]string{}
	if n := len(r.Body.Contents); n > 0 {
		for _, p := range r.Body.Contents[n-1].Parts {
			if p.FunctionResponse != nil {
				out[p.FunctionResponse.Name] = string(p.FunctionResponse.Response)
			}
		}
	}
	return out
}

// ToolNames are the functions the request offers the model.
func (r *GeminiRequest) ToolNames() []string {
	var names []string
	for _, t := range r.Body.Tools {
		for _, f := range t.FunctionDeclarations {
			names = append(names, f.Name)
		}
	}
	return names
}

// NewGemini starts the stand-in on a loopback port.
func NewGemini() (*Gemini, error) {
	s := &Gemini{}
	if err := s.start(s); err != nil {
		return nil, err
	}
	return s, nil
}

// URL is a session's base URL: GOOGLE_GEMINI_BASE_URL.
func (s *Gemini) URL(sess string) string { return s.root(sess) }

// ServeHTTP answers POST /PREFIX/v1beta/models/MODEL:streamGenerateContent
// and :generateContent.
func (s *Gemini) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sess, path := splitPath(r.URL.Path, "/v1beta/")
	model, method, _ := strings.Cut(strings.TrimPrefix(path, "/v1beta/models/"), ":")
	if r.Method != http.MethodPost || !strings.HasPrefix(path, "/v1beta/models/") {
		http.Error(w, `{"error":{"code":404,"message":"not scripted","status":"NOT_FOUND"}}`, http.StatusNotFound)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch method {
	case "generateContent":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(geminiResponse(Reply{Text: "{}"}))
		return
	case "countTokens":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"totalTokens":10}`)
		return
	case "streamGenerateContent":
	default:
		http.Error(w, `{"error":{"code":404,"message":"not scripted","status":"NOT_FOUND"}}`, http.StatusNotFound)
		return
	}
	req := &GeminiRequest{Session: sess, Model: model, At: time.Now(), Raw: raw}
	rep, ok := s.take(w, r, sess, req, raw, &req.Body)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	b, _ := json.Marshal(geminiResponse(rep))
	sseEvent(w, "", b)
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
}

// geminiResponse is rep as one GenerateContentResponse.
func geminiResponse(rep Reply) map[string]any {
	rep.fill()
	var parts []any
	if rep.Text != "" || len(rep.ToolUses) == 0 {
		parts = append(parts, map[string]any{"text": rep.Text})
	}
	for _, tu := range rep.ToolUses {
		parts = append(parts, map[string]any{"functionCall": map[string]any{"name": tu.Name, "args": tu.Input}})
	}
	return map[string]any{
		"candidates":    []any{map[string]any{"content": map[string]any{"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}},
		"usageMetadata": map[string]any{"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
	}
}
