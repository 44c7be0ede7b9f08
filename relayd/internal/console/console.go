// Package console is the operator's console: a live web page, served by
// relayd at /console, where a person sees who is online and what each agent
// is doing, reads what the agents tell each other (with each message's
// stages per recipient: stored, delivered, read), steps in with a message of
// their own, and holds a pair of agents caught in a loop.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary (no
// build step, no framework). It loads a snapshot from /console/api/state and
// /console/api/messages, then follows the relay's events over server-sent
// events (/console/api/events): nothing polls. Access: see access.go.
package console

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/auth"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
	"github.com/claude-relay/claude-relay/relayd/internal/ratelimit"
	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

//go:embed assets
var assets embed.FS

// Path is where the console is served.
const Path = "/console"

// Console serves the operator's console. Set the fields, then use Handler.
type Console struct {
	// Hub is the relay's hub. Required.
	Hub *hub.Hub
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Token and Tokens are the relay's credentials. With either set the
	// console asks for a token that may claim any id (the shared token, or
	// a tokens-file line for "*"); without, it is served to loopback only.
	Token  string
	Tokens *auth.Tokens
	// AuthFails, when set, limits wrong tokens per address (the relay's
	// --auth-fail-limit), shared with the WebSocket endpoints.
	AuthFails *ratelimit.Buckets
	// Limits bound what an operator may post, as for any client.
	Limits protocol.Limits
	// UnreadAlert is how long mail may sit unread before the console
	// raises an alert. Defaults to 10 minutes.
	UnreadAlert time.Duration

	once    sync.Once
	csrfKey []byte
	stopObs func()

	mu     sync.Mutex
	subs   map[*sub]bool
	loops  []loopAlert // the latest loop alerts, newest last
	closed bool
	done   chan struct{}
}

type loopAlert struct {
	Pair    [2]string `json:"pair"`
	Warning string    `json:"warning"`
	At      time.Time `json:"at"`
}

// maxLoopAlerts is how many loop alerts the console remembers.
const maxLoopAlerts = 50

func (c *Console) init() {
	c.once.Do(func() {
		if c.Logger == nil {
			c.Logger = slog.Default()
		}
		if c.UnreadAlert <= 0 {
			c.UnreadAlert = 10 * time.Minute
		}
		c.csrfKey = make([]byte, 32)
		rand.Read(c.csrfKey)
		c.subs = map[*sub]bool{}
		c.done = make(chan struct{})
		c.stopObs = c.Hub.Observe(c.observe)
	})
}

// Close ends every event stream (so that an HTTP server's graceful shutdown
// is not held up by them) and stops following the hub.
func (c *Console) Close() {
	c.init()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.done)
	c.mu.Unlock()
	// Lock order: the hub's observer lock, then c.mu (the hub calls observe
	// under its lock, and observe takes c.mu), so stopping the feed, which
	// takes the hub's lock, must not hold c.mu: a client leaving during a
	// shutdown deadlocked the two.
	c.stopObs()
}

// Handler serves everything under Path.
func (c *Console) Handler() http.Handler {
	c.init()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Path, c.servePage)
	mux.HandleFunc("GET "+Path+"/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Path, http.StatusSeeOther)
	})
	mux.HandleFunc("GET "+Path+"/static/{file}", c.serveStatic)
	mux.HandleFunc("POST "+Path+"/login", c.serveLogin)
	mux.HandleFunc("POST "+Path+"/logout", c.serveLogout)
	mux.HandleFunc("GET "+Path+"/api/state", c.api(c.serveState))
	mux.HandleFunc("GET "+Path+"/api/messages", c.api(c.serveMessages))
	mux.HandleFunc("GET "+Path+"/api/search", c.api(c.serveSearch))
	mux.HandleFunc("GET "+Path+"/api/stages", c.api(c.serveStages))
	mux.HandleFunc("GET "+Path+"/api/events", c.api(c.serveEvents))
	mux.HandleFunc("POST "+Path+"/api/post", c.api(c.servePost))
	mux.HandleFunc("POST "+Path+"/api/hold", c.api(c.serveHold(true)))
	mux.HandleFunc("POST "+Path+"/api/release", c.api(c.serveHold(false)))
	return securityHeaders(mux)
}

// securityHeaders sets the headers every console answer carries: no
// inline script, no framing, no sniffing, no caching, no referrer.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin") // not no-referrer: that makes a form post's Origin "null"
		hd.Set("Cache-Control", "no-store")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

func (c *Console) servePage(w http.ResponseWriter, r *http.Request) {
	name := "assets/index.html"
	if !c.allowed(w, r, false) {
		if c.refusedLoopback(r) {
			return // answered already
		}
		name = "assets/login.html"
	}
	b, err := assets.ReadFile(name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}

// public are the static files served before login (the login form's).
var public = map[string]bool{"app.css": true}

func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	if !public[file] && !c.allowed(w, r, true) {
		return
	}
	b, err := assets.ReadFile("assets/" + file)
	if err != nil || strings.HasSuffix(file, ".html") {
		http.NotFound(w, r)
		return
	}
	switch {
	case strings.HasSuffix(file, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(file, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	}
	w.Write(b)
}

// api wraps an API handler with the access check (and, for posts, the
// CSRF check).
func (c *Console) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !c.allowed(w, r, true) {
			return
		}
		if r.Method == http.MethodPost && !c.csrfOK(w, r) {
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// peerView is one row of the console's peer table.
type peerView struct {
	ID           string    `json:"id"`
	Online       bool      `json:"online"`
	Person       bool      `json:"person,omitempty"`
	Host         string    `json:"host,omitempty"`
	Agent        string    `json:"agent,omitempty"`
	Cwd          string    `json:"cwd,omitempty"`
	Label        string    `json:"label,omitempty"`
	Status       string    `json:"status,omitempty"`
	Unread       int       `json:"unread"`
	OldestUnread time.Time `json:"oldest_unread,omitzero"`
	LastRead     time.Time `json:"last_read,omitzero"`
	LastSeen     time.Time `json:"last_seen,omitzero"`
	Queued       int       `json:"queued"`
}

type state struct {
	CSRF         string      `json:"csrf"`
	Now          time.Time   `json:"now"`
	Peers        []peerView  `json:"peers"`
	Holds        []holdView  `json:"holds"`
	Released     []holdView  `json:"released"` // the latest releases
	Loops        []loopAlert `json:"loops"`
	UnreadAlertS float64     `json:"unread_alert_s"`
	PersonPrefix string      `json:"person_prefix"`
	MaxBodyBytes int         `json:"max_body_bytes"`
}

func (c *Console) serveState(w http.ResponseWriter, r *http.Request) {
	st, err := c.state(r.Context())
	if err != nil {
		http.Error(w, "the relay could not read its store: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	st.CSRF = c.csrfToken(r)
	writeJSON(w, st)
}

func (c *Console) state(ctx context.Context) (*state, error) {
	sessions, err := c.Hub.Sessions(ctx)
	if err != nil {
		return nil, err
	}
	status := map[string]string{}
	for _, p := range c.Hub.Peers() {
		status[p.ID] = p.Status
	}
	ids := make([]string, len(sessions))
	for i, s := range sessions {
		ids[i] = s.ID
	}
	reads, _ := c.Hub.Store().ReadStates(ctx, ids)
	// Replies to an operator are read here, on the page asking.
	var unreadPeople []string
	for id, rs := range reads {
		if protocol.IsPersonID(id) && rs.Unread > 0 {
			unreadPeople = append(unreadPeople, id)
			rs.Unread, rs.LastRead = 0, time.Now().UTC()
			reads[id] = rs
		}
	}
	c.Hub.ReadOnConsole(ctx, unreadPeople)
	oldest, _ := c.Hub.Store().OldestUnread(ctx, ids)
	st := &state{Now: time.Now().UTC(), Holds: viewHolds(c.Hub.Holds()), Released: c.released(ctx), UnreadAlertS: c.UnreadAlert.Seconds(),
		PersonPrefix: protocol.PersonPrefix, MaxBodyBytes: c.Limits.MaxBodyBytes}
	if st.MaxBodyBytes <= 0 {
		st.MaxBodyBytes = protocol.DefaultMaxBodyBytes
	}
	for _, s := range sessions {
		pv := peerView{ID: s.ID, Online: s.Online, Person: protocol.IsPersonID(s.ID), Host: s.Host, Agent: s.Agent, Cwd: s.Cwd,
			Label: s.Label, Status: status[s.ID], LastSeen: s.LastSeen, Queued: s.Queued,
			Unread: reads[s.ID].Unread, LastRead: reads[s.ID].LastRead, OldestUnread: oldest[s.ID]}
		if slices.Contains(unreadPeople, s.ID) {
			pv.Queued = 0 // delivered just now, after Sessions counted it
		}
		st.Peers = append(st.Peers, pv)
	}
	slices.SortFunc(st.Peers, func(a, b peerView) int { return strings.Compare(a.ID, b.ID) })
	c.mu.Lock()
	st.Loops = slices.Clone(c.loops)
	c.mu.Unlock()
	return st, nil
}

// messageView is a message on the timeline with its stages.
type messageView struct {
	store.Message
	Person bool        `json:"person,omitempty"`
	Stages []stageView `json:"stages"`
}

// stageView is one recipient's stages of a message. A time left out has
// not happened (yet).
type stageView struct {
	To        string    `json:"to"`
	State     string    `json:"state"` // stored, delivered, read; or the send's outcome (unknown, full)
	Stored    time.Time `json:"stored,omitzero"`
	Delivered time.Time `json:"delivered,omitzero"`
	Read      time.Time `json:"read,omitzero"`
}

func viewOf(m store.Message) messageView {
	return messageView{Message: m, Person: protocol.IsPersonID(m.From), Stages: []stageView{}}
}

func stageOf(x store.Receipt) stageView {
	sv := stageView{To: x.To, State: protocol.ReceiptStored, Stored: x.Stored, Delivered: x.Delivered, Read: x.Read}
	switch {
	case !x.Read.IsZero():
		sv.State = protocol.ReceiptRead
	case x.DeliveredOK:
		sv.State = protocol.ReceiptDelivered
		if sv.Delivered.IsZero() {
			sv.Delivered = x.Stored
		}
	}
	return sv
}

func (c *Console) serveMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	limit = min(max(limit, 0), 1000)
	msgs, more, err := c.Hub.Store().Timeline(r.Context(), store.TimelineQuery{Peer: q.Get("peer"), With: q.Get("with"), Thread: q.Get("thread"),
		Before: q.Get("before"), Limit: limit})
	c.writeMessages(w, r, msgs, more, err)
}

// serveSearch answers the messages whose bodies hold every word of ?q=,
// newest last, with their stages (as serveMessages; ?before= pages back).
func (c *Console) serveSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	text := q.Get("q")
	if len(text) > 500 {
		http.Error(w, "search for at most 500 bytes of words", http.StatusBadRequest)
		return
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	limit = min(max(limit, 0), 1000)
	msgs, more, err := c.Hub.Store().Search(r.Context(), store.SearchQuery{Text: text, Before: q.Get("before"), Limit: limit})
	c.writeMessages(w, r, msgs, more, err)
}

// writeMessages answers a page of messages with their stages, or err.
func (c *Console) writeMessages(w http.ResponseWriter, r *http.Request, msgs []store.Message, more bool, err error) {
	var views []messageView
	if err == nil {
		views, err = c.withStages(r.Context(), msgs)
	}
	if err != nil {
		http.Error(w, "the relay could not read its store: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, map[string]any{"messages": views, "more": more})
}

func (c *Console) withStages(ctx context.Context, msgs []store.Message) ([]messageView, error) {
	views := make([]messageView, len(msgs))
	ids := make([]string, len(msgs))
	at := make(map[string]int, len(msgs))
	for i, m := range msgs {
		views[i] = viewOf(m)
		ids[i] = m.ID
		at[m.ID] = i
	}
	if len(ids) == 0 {
		return views, nil
	}
	rs, err := c.Hub.Store().Stages(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, x := range rs {
		if i, ok := at[x.MsgID]; ok {
			views[i].Stages = append(views[i].Stages, stageOf(x))
		}
	}
	return views, nil
}

// serveStages answers the stages of the messages ?ids=a,b,… (at most 500).
func (c *Console) serveStages(w http.ResponseWriter, r *http.Request) {
	ids := strings.Split(r.URL.Query().Get("ids"), ",")
	ids = slices.DeleteFunc(ids, func(s string) bool { return protocol.ValidateMessageID(s) != nil })
	if len(ids) > 500 {
		ids = ids[:500]
	}
	out := map[string][]stageView{}
	if len(ids) > 0 {
		rs, err := c.Hub.Store().Stages(r.Context(), ids)
		if err != nil {
			http.Error(w, "the relay could not read its store: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		for _, x := range rs {
			out[x.MsgID] = append(out[x.MsgID], stageOf(x))
		}
	}
	writeJSON(w, map[string]any{"stages": out})
}

// postReq is what the composer sends.
type postReq struct {
	As      string   `json:"as"`     // operator name, without the prefix
	To      []string `json:"to"`     // ids, or ["*"]
	Thread  string   `json:"thread"` // optional
	ReplyTo string   `json:"reply_to"`
	Body    string   `json:"body"`
}

func (c *Console) servePost(w http.ResponseWriter, r *http.Request) {
	var p postReq
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, int64(4*c.maxBody()+4096))).Decode(&p); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	from, err := operatorID(p.As)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	to := p.To
	if len(to) == 0 && p.Thread != "" {
		if to, err = c.threadParticipants(r.Context(), p.Thread, from); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	// Through the codec, so an operator's post is held to every rule an
	// agent's send is.
	raw, _ := json.Marshal(map[string]any{"type": protocol.TypeSend, "ref": "console-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		"to": to, "body": p.Body, "thread": p.Thread, "reply_to": p.ReplyTo})
	f, err := c.Limits.Decode(raw)
	if err != nil {
		http.Error(w, "not sent: "+err.Error(), http.StatusBadRequest)
		return
	}
	acc, perr := c.Hub.Post(r.Context(), from, f.(*protocol.Send))
	if perr != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		json.NewEncoder(w).Encode(map[string]any{"error": perr.Message, "code": perr.Code})
		return
	}
	c.Logger.Info("operator posted", "from", from, "to", to, "thread", p.Thread, "id", acc.ID)
	writeJSON(w, acc)
}

func (c *Console) maxBody() int {
	if c.Limits.MaxBodyBytes > 0 {
		return c.Limits.MaxBodyBytes
	}
	return protocol.DefaultMaxBodyBytes
}

// threadParticipants is everyone who wrote or was written to in thread
// (but the operator): a post to a thread goes to them.
func (c *Console) threadParticipants(ctx context.Context, thread, self string) ([]string, error) {
	msgs, _, err := c.Hub.Store().Timeline(ctx, store.TimelineQuery{Thread: thread, Limit: 200})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{self: true, protocol.Broadcast: true}
	var out []string
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	for _, m := range msgs {
		add(m.From)
		for _, t := range m.To {
			add(t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("thread %q has no messages: name the recipients", thread)
	}
	return out, nil
}
