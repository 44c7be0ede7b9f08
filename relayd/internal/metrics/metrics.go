// Package metrics is relayd's Prometheus face: one registry per relay (no
// global default registry), read at scrape time from the counters the hub
// and the server already keep, plus a histogram of store append latency
// taken by a thin wrapper around the store. Nothing here counts twice what
// another package counts already.
package metrics

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
)

// Metrics holds one relay's registry. Make it with New, wrap the store with
// Store, hand it to the server, which calls Watch once its hub exists.
type Metrics struct {
	reg           *prometheus.Registry
	appendSeconds prometheus.Histogram
}

// New returns a registry with the Go runtime and process collectors and
// the store latency histogram; the relay's own gauges and counters join it
// with Watch.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "relayd_store_append_seconds",
			Help: "Time to store one message durably for all its recipients (the sender waits this long for accepted).",
			// Group commit on SQLite lands in the 0.1–10 ms range; the tail
			// shows a slow or full disk.
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.appendSeconds,
	)
	return m
}

// Source is where the relay's numbers live; each is read at scrape time.
type Source struct {
	// Version is the relay's version, reported in relayd_build_info.
	Version string
	// Started is when the relay started serving (relayd_uptime_seconds).
	Started time.Time
	// Hub holds who is online and the routing counters. Required.
	Hub *hub.Hub
	// Sockets returns the open WebSocket connections, including those
	// that have not said hello yet. Optional.
	Sockets func() int64
	// MessagesOut returns how many message frames were written to clients.
	// Optional.
	MessagesOut func() int64
}

// Watch registers the relay's collector. Call it once.
func (m *Metrics) Watch(src Source) error {
	return m.reg.Register(newRelayCollector(src))
}

// Handler serves the registry in the Prometheus text format. A metric that
// cannot be read (the store is down) is left out and the rest are served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, Registry: m.reg})
}

// Registry is the relay's registry, for tests and embedding.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// relayCollector turns the hub's and the server's counters into metrics at
// scrape time.
type relayCollector struct {
	src Source

	buildInfo, uptime, online, sockets                 *prometheus.Desc
	received, recipients, dropped, rateLimit, loopWarn *prometheus.Desc
	closed, messagesOut, framesOut, framesInline       *prometheus.Desc
	sessions, unacked, mailboxes, depthMax             *prometheus.Desc
}

func newRelayCollector(src Source) *relayCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &relayCollector{
		src:       src,
		buildInfo: d("relayd_build_info", "Always 1; the labels say which relayd this is.", "version", "proto", "goversion"),
		uptime:    d("relayd_uptime_seconds", "Seconds since relayd started serving."),
		online:    d("relayd_clients_online", "Clients connected and past hello (what peers lists)."),
		sockets:   d("relayd_websocket_connections", "Open WebSocket connections, including those that have not said hello yet."),
		received:  d("relayd_messages_received_total", "Send frames accepted from clients (each stored once, whatever its number of recipients)."),
		recipients: d("relayd_message_recipients_total",
			"Recipients of accepted messages by outcome: delivered (online, pushed now) or queued (offline, kept until it returns).", "outcome"),
		dropped: d("relayd_messages_dropped_total",
			"Messages not stored, by reason; the sender was told each time. unknown_recipient and mailbox_full count recipients, store_unavailable counts sends.", "reason"),
		rateLimit:    d("relayd_rate_limited_total", "Requests and sends refused with rate_limited (the client is told when to retry)."),
		loopWarn:     d("relayd_loop_warnings_total", "Sends whose accepted warned that the sender's exchange with a recipient looks like a loop (--loop-warn); they were delivered."),
		closed:       d("relayd_connections_closed_total", "Connections the relay closed, by reason: slow_consumer (did not drain its queue) or replaced (the same id connected again).", "reason"),
		messagesOut:  d("relayd_messages_sent_total", "Message frames written to clients (live, resumed or backlog)."),
		framesOut:    d("relayd_frames_out_total", "Frames of every type handed to client writers."),
		framesInline: d("relayd_frames_out_inline_total", "Of relayd_frames_out_total, frames a sender's own reader wrote to an idle connection with room in its socket, without a hand-off to the connection's writer."),
		sessions:     d("relayd_sessions_known", "Client ids the relay knows (mail to them is queued while they are offline)."),
		unacked:      d("relayd_unacked_messages", "Messages in all mailboxes that their recipient has not acknowledged yet."),
		mailboxes:    d("relayd_mailboxes_with_unacked", "Mailboxes holding at least one unacknowledged message."),
		depthMax:     d("relayd_mailbox_depth_max", "Unacknowledged messages in the fullest mailbox (senders hear mailbox full at --max-queue)."),
	}
}

func (c *relayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.buildInfo, c.uptime, c.online, c.sockets, c.received, c.recipients, c.dropped,
		c.rateLimit, c.loopWarn, c.closed, c.messagesOut, c.framesOut, c.framesInline, c.sessions, c.unacked, c.mailboxes, c.depthMax} {
		ch <- d
	}
}

func (c *relayCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(c.buildInfo, 1, c.src.Version, strconv.Itoa(protocol.Version), runtime.Version())
	gauge(c.uptime, time.Since(c.src.Started).Seconds())
	h := c.src.Hub
	gauge(c.online, float64(h.Online()))
	if c.src.Sockets != nil {
		gauge(c.sockets, float64(c.src.Sockets()))
	}
	st := h.Stats()
	counter(c.received, st.Sent.Load())
	counter(c.recipients, st.Delivered.Load(), "delivered")
	counter(c.recipients, st.Queued.Load(), "queued")
	counter(c.dropped, st.Unknown.Load(), "unknown_recipient")
	counter(c.dropped, st.Full.Load(), "mailbox_full")
	counter(c.dropped, st.StoreErrors.Load(), "store_unavailable")
	counter(c.rateLimit, st.RateLimited.Load())
	counter(c.loopWarn, st.LoopWarnings.Load())
	counter(c.closed, st.SlowConsumers.Load(), "slow_consumer")
	counter(c.closed, st.Replaced.Load(), "replaced")
	counter(c.framesOut, st.FramesToClient.Load())
	counter(c.framesInline, st.FramesInline.Load())
	if c.src.MessagesOut != nil {
		counter(c.messagesOut, c.src.MessagesOut())
	}

	// Queue depths come from the store; a scrape must not hang on a stuck
	// disk, so it gets a short deadline and reports the failure instead.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	sessions, err := h.Sessions(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.unacked, err)
		return
	}
	var total, boxes, deepest int
	for _, s := range sessions {
		total += s.Queued
		if s.Queued > 0 {
			boxes++
		}
		deepest = max(deepest, s.Queued)
	}
	gauge(c.sessions, float64(len(sessions)))
	gauge(c.unacked, float64(total))
	gauge(c.mailboxes, float64(boxes))
	gauge(c.depthMax, float64(deepest))
}
