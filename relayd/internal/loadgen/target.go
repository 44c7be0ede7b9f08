package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
)

// Target is a relay to measure and the protocol to speak to it.
type Target struct {
	URL   string // ws://host:port
	Token string
	// Legacy speaks the older Node relay's protocol on / (register,
	// message {to, content}) instead of protocol v1 on /v1/ws.
	Legacy bool
	// PeerURL, when set, is another node of the same cluster: echo's
	// second client and throughput's receiver connect there, so every
	// message crosses nodes. Sends then ask to be queued for an id the
	// sender's node has not heard of yet (it may learn of the receiver a
	// moment after it connected).
	PeerURL string
}

// peer dials the client that receives: on PeerURL when set.
func (t Target) peer(ctx context.Context, id string) (peer, error) {
	if t.PeerURL != "" {
		t.URL = t.PeerURL
	}
	return t.dial(ctx, id)
}

// peer is one load client, in either protocol.
type peer interface {
	id() string
	send(ctx context.Context, ref, to, body string) error
	// next returns the next message's seq (0 in the older protocol) and
	// body; other frames are read past, errors end it.
	next(ctx context.Context) (uint64, string, error)
	ack(ctx context.Context, seq uint64)
	close()
}

func (t Target) dial(ctx context.Context, id string) (peer, error) {
	if !t.Legacy {
		c, err := Dial(ctx, t.URL, id, t.Token)
		if err != nil {
			return nil, err
		}
		return v1Peer{c, t.PeerURL != ""}, nil
	}
	return dialLegacy(ctx, t.URL, id, t.Token)
}

type v1Peer struct {
	*Client
	queueIfUnknown bool
}

func (p v1Peer) id() string { return p.ID }
func (p v1Peer) send(ctx context.Context, ref, to, body string) error {
	return p.Send(ctx, &protocol.Send{Ref: ref, To: protocol.Recipients{to}, Body: body, QueueIfUnknown: p.queueIfUnknown})
}
func (p v1Peer) ack(ctx context.Context, seq uint64) {
	if seq = min(seq, p.confirmed); seq > 0 {
		p.Send(ctx, &protocol.Ack{Upto: seq})
	}
}
func (p v1Peer) close() { p.Close() }
func (p v1Peer) next(ctx context.Context) (uint64, string, error) {
	for {
		f, err := p.Next(ctx)
		if err != nil {
			return 0, "", err
		}
		switch f := f.(type) {
		case *protocol.Message:
			if !f.Provisional {
				p.confirmed = max(p.confirmed, f.Seq)
			}
			return f.Seq, f.Body, nil
		case *protocol.Ack:
			p.confirmed = max(p.confirmed, f.Upto)
		case *protocol.ErrorFrame:
			return 0, "", errors.New(f.Message)
		}
	}
}

// legacyPeer is a client of the older protocol, as its test-client.js was.
type legacyPeer struct {
	name string
	ws   *websocket.Conn
}

type legacyIn struct {
	Type    string `json:"type"`
	Content string `json:"content"`
	Message string `json:"message"`
}

func dialLegacy(ctx context.Context, url, id, token string) (*legacyPeer, error) {
	u := strings.TrimSuffix(url, "/") + "/"
	if token != "" {
		u += "?token=" + token
	}
	ws, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s as %s: %w", url, id, err)
	}
	ws.SetReadLimit(int64(protocol.DefaultMaxFrameBytes))
	p := &legacyPeer{name: id, ws: ws}
	b, _ := json.Marshal(map[string]any{"type": "register", "clientId": id, "meta": map[string]string{"agent": "loadgen"}})
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		ws.CloseNow()
		return nil, err
	}
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			ws.CloseNow()
			return nil, fmt.Errorf("%s waiting for registered: %w", id, err)
		}
		var f legacyIn
		json.Unmarshal(data, &f)
		switch f.Type {
		case "registered":
			return p, nil
		case "error":
			ws.CloseNow()
			return nil, fmt.Errorf("%s refused: %s", id, f.Message)
		}
	}
}

func (p *legacyPeer) id() string { return p.name }
func (p *legacyPeer) send(ctx context.Context, _, to, body string) error {
	b, _ := json.Marshal(map[string]string{"type": "message", "to": to, "content": body})
	return p.ws.Write(ctx, websocket.MessageText, b)
}
func (p *legacyPeer) ack(context.Context, uint64) {} // the older protocol has no ack
func (p *legacyPeer) close()                      { p.ws.Close(websocket.StatusNormalClosure, "") }
func (p *legacyPeer) next(ctx context.Context) (uint64, string, error) {
	for {
		_, data, err := p.ws.Read(ctx)
		if err != nil {
			return 0, "", err
		}
		var f legacyIn
		if err := json.Unmarshal(data, &f); err != nil {
			return 0, "", err
		}
		switch f.Type {
		case "message":
			return 0, f.Content, nil
		case "error":
			return 0, "", errors.New(f.Message)
		}
	}
}

// EchoOn measures n round trips A→relay→B→relay→A with bodies of size
// bytes, one in flight at a time, and returns each round trip's duration.
func EchoOn(ctx context.Context, t Target, n, size int) ([]time.Duration, error) {
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	a, err := t.dial(ctx, "echo-a-"+run)
	if err != nil {
		return nil, err
	}
	defer a.close()
	b, err := t.peer(ctx, "echo-b-"+run)
	if err != nil {
		return nil, err
	}
	defer b.close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// B echoes every message back to A and acks what it got.
	echoErr := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			seq, body, err := b.next(ctx)
			if err != nil {
				echoErr <- err
				return
			}
			if err := b.send(ctx, "e"+strconv.Itoa(i), a.id(), body); err != nil {
				echoErr <- err
				return
			}
			if seq%64 == 0 && seq > 0 {
				b.ack(ctx, seq)
			}
		}
	}()
	body := strings.Repeat("x", size)
	rtts := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := a.send(ctx, "p"+strconv.Itoa(i), b.id(), body); err != nil {
			return rtts, err
		}
		seq, _, err := a.next(ctx)
		if err != nil {
			select {
			case e := <-echoErr:
				return rtts, fmt.Errorf("echo side: %w", e)
			default:
			}
			return rtts, err
		}
		rtts = append(rtts, time.Since(start))
		if seq%64 == 0 && seq > 0 {
			a.ack(ctx, seq)
		}
	}
	return rtts, nil
}

// ThroughputOn sends total messages of size bytes from senders clients to
// one receiver and measures until the receiver has them all. Protocol v1
// senders keep at most window sends unanswered; the older protocol has no
// answer to a send, so its senders write as fast as the relay reads.
func ThroughputOn(ctx context.Context, t Target, senders, total, size, window int) (ThroughputResult, error) {
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	rx, err := t.peer(ctx, "sink-"+run)
	if err != nil {
		return ThroughputResult{}, err
	}
	defer rx.close()
	var txs []peer
	for i := 0; i < senders; i++ {
		c, err := t.dial(ctx, fmt.Sprintf("src-%d-%s", i, run))
		if err != nil {
			return ThroughputResult{}, err
		}
		defer c.close()
		txs = append(txs, c)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	body := strings.Repeat("y", size)
	per := total / senders
	total = per * senders
	start := time.Now()
	var wg sync.WaitGroup
	var sendErr atomic.Pointer[error]
	for _, tx := range txs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if p, ok := tx.(v1Peer); ok {
				err = sendBurst(ctx, p.Client, rx.id(), body, per, window)
			} else {
				err = sendBlind(ctx, tx, rx.id(), body, per)
			}
			if err != nil && ctx.Err() == nil {
				sendErr.Store(&err)
				cancel()
			}
		}()
	}
	got := 0
	for got < total {
		seq, _, err := rx.next(ctx)
		if err != nil {
			if p := sendErr.Load(); p != nil {
				return ThroughputResult{}, *p
			}
			return ThroughputResult{}, fmt.Errorf("receiver after %d of %d messages: %w", got, total, err)
		}
		got++
		if got%256 == 0 && seq > 0 {
			rx.ack(ctx, seq)
		}
	}
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	return ThroughputResult{Messages: got, Elapsed: elapsed}, nil
}

// sendBlind writes n messages without waiting for answers; a reader drains
// what comes back and stops the run on an error frame (a full mailbox).
func sendBlind(ctx context.Context, tx peer, to, body string, n int) error {
	readErr := make(chan error, 1)
	go func() {
		_, _, err := tx.next(ctx)
		readErr <- err
	}()
	for i := 0; i < n; i++ {
		if err := tx.send(ctx, "", to, body); err != nil {
			return err
		}
		select {
		case err := <-readErr:
			if ctx.Err() == nil {
				return fmt.Errorf("sender after %d messages: %w", i, err)
			}
			return nil
		default:
		}
	}
	return nil
}

// OverloadResult is what an overload run saw.
type OverloadResult struct {
	Sent, Accepted, Full int // sends written, stored for the receiver, refused as full
	Received             int // messages the receiver got, by the end
	Elapsed              time.Duration
}

// Overload has senders protocol v1 clients send to one receiver as fast as
// the relay takes them for d, while the receiver reads at most rate
// messages a second; then the receiver reads at full speed until it holds
// every accepted message (or ctx ends). The relay must slow the senders
// (their window fills while accepted waits for the store) or answer full,
// and lose nothing it accepted.
func Overload(ctx context.Context, t Target, senders int, d time.Duration, size, window, rate int) (OverloadResult, error) {
	var res OverloadResult
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	rx, err := Dial(ctx, t.URL, "slow-"+run, t.Token)
	if err != nil {
		return res, err
	}
	defer rx.Close()
	body := strings.Repeat("z", size)
	var sent, accepted, full atomic.Int64
	sendCtx, stopSending := context.WithTimeout(ctx, d)
	defer stopSending()
	var wg sync.WaitGroup
	for i := 0; i < senders; i++ {
		tx, err := Dial(ctx, t.URL, fmt.Sprintf("fast-%d-%s", i, run), t.Token)
		if err != nil {
			return res, err
		}
		defer tx.Close()
		credits := make(chan struct{}, window)
		wg.Add(2)
		go func() { // answers
			defer wg.Done()
			for {
				f, err := tx.Next(ctx)
				if err != nil {
					return
				}
				if a, ok := f.(*protocol.Accepted); ok {
					<-credits
					for _, o := range a.Recipients {
						if o.Status == protocol.StatusFull {
							full.Add(1)
						} else {
							accepted.Add(1)
						}
					}
				}
			}
		}()
		go func() {
			defer wg.Done()
			for k := 0; sendCtx.Err() == nil; k++ {
				select {
				case credits <- struct{}{}:
				case <-sendCtx.Done():
					return
				}
				if tx.Send(ctx, &protocol.Send{Ref: "o" + strconv.Itoa(k), To: protocol.Recipients{rx.ID}, Body: body}) != nil {
					return
				}
				sent.Add(1)
			}
		}()
	}
	start := time.Now()
	// The receiver's reader hands messages over one at a time: while the
	// consumer below waits, nothing more is read from the socket.
	type got struct{ err error }
	msgs := make(chan got, 1)
	p := v1Peer{Client: rx}
	go func() {
		for n := 1; ; n++ {
			seq, _, err := p.next(ctx)
			if err == nil && n%256 == 0 {
				p.ack(ctx, seq)
			}
			select {
			case msgs <- got{err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	tick := time.NewTicker(time.Second / 100)
	defer tick.Stop()
	budget, received := 0, 0
	for {
		if sendCtx.Err() != nil {
			if int64(received) >= accepted.Load() && sent.Load() == accepted.Load()+full.Load() {
				break // every send answered, every accepted message here
			}
		} else if budget <= 0 {
			select {
			case <-tick.C:
				budget = max(rate/100, 1)
			case <-ctx.Done():
				return res, ctx.Err()
			}
			continue
		}
		select {
		case m := <-msgs:
			if m.err != nil {
				return res, fmt.Errorf("receiver after %d of %d accepted: %w", received, accepted.Load(), m.err)
			}
			received++
			budget--
		case <-tick.C: // look at the counts again
		case <-ctx.Done():
			return res, fmt.Errorf("receiver after %d of %d accepted: %w", received, accepted.Load(), ctx.Err())
		}
	}
	stopSending()
	return OverloadResult{Sent: int(sent.Load()), Accepted: int(accepted.Load()), Full: int(full.Load()), Received: received, Elapsed: time.Since(start)}, nil
}
