package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relayd/internal/auth"
	"github.com/claude-relay/claude-relay/relayd/internal/hub"
)

// serveWS runs one WebSocket connection from upgrade to close.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, codec Codec) {
	sl, ok := s.admit(w, r)
	if !ok {
		return
	}
	defer sl.Release()
	s.conns.Add(1)
	defer s.conns.Done()
	bw := &batchingWriter{ResponseWriter: w}
	ws, err := websocket.Accept(bw, r, &websocket.AcceptOptions{OriginPatterns: s.AllowOrigins})
	if err != nil {
		// Accept has answered already (403 for a foreign Origin, 426 …).
		s.Logger.Info("websocket upgrade refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
		return
	}
	ws.SetReadLimit(int64(s.Limits.MaxFrameBytes))
	s.counters.sockets.Add(1)
	defer s.counters.sockets.Add(-1)
	log := s.Logger.With("remote", r.RemoteAddr, "transport", codec.Name())

	// The connection's lifetime is ctx, not the request's: a cancelled read
	// makes the websocket library drop the socket without a close frame, so
	// every close with a code goes through ws.Close instead.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	defer ws.CloseNow()

	// hctx ends only when a newer connection takes this one's slot before
	// its hello (gate.go). It must not be cancelled otherwise: the
	// websocket library closes the socket when the context of its last
	// read ends, even after the read returned.
	hctx, hcancel := context.WithCancel(ctx)
	sl.OnEvict(hcancel, bw.conn.heard.Load)
	hello, err := s.readHello(hctx, ws, codec, log)
	if err != nil {
		log.Debug("no session", "err", err)
		return
	}
	if !sl.Hello() {
		log.Debug("no session: a newer connection took its slot before its hello")
		return
	}
	if !s.mayClaim(ctx, ws, codec, r, hello, log) {
		return
	}
	conn, welcome, err := s.Hub.Join(ctx, hello, codec.AutoAck())
	if errors.Is(err, hub.ErrIDInUse) {
		s.write(ctx, ws, codec, &protocol.ErrorFrame{Code: protocol.CodeIDInUse, Message: err.Error()}, "")
		ws.Close(protocol.CloseIDInUse, protocol.CloseReason(protocol.CloseIDInUse))
		return
	}
	if err != nil {
		ws.Close(protocol.CloseGoingAway, err.Error())
		return
	}
	if id, ok := r.Context().Value(identityKey{}).(auth.Identity); ok {
		conn.SetClaims(id.May) // who may be watched (hub/status_watch.go)
	}
	log = log.With("client", conn.ID())
	reason := "closed by client"
	defer func() { s.Hub.Leave(conn, reason) }()

	if err := s.write(ctx, ws, codec, welcome, conn.ID()); err != nil {
		reason = "write failed"
		return
	}

	// Two goroutines a connection: the reader is this one, the writer is
	// started and cancelled with it. Pings come from one pinger for all.
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeLoop(ctx, ws, bw.conn, codec, conn, log)
		s.closeKicked(ctx, cancel, ws, bw.conn, conn)
	}()
	// The reader is this goroutine: it alone reads br, and asks.
	conn.SetReadAhead(func() bool { return bw.br != nil && bw.br.Buffered() > 0 })
	lc := s.track(conn, ws)
	defer s.untrack(conn)
	reason = s.readLoop(ctx, ws, bw.conn, codec, conn, lc, log)
	if code, why := conn.CloseStatus(); code != 0 {
		reason = why
	}
	cancel()
	<-writerDone
}

// closeKicked runs when the writer stops. If the hub closed the connection
// (replaced, slow, idle, shutdown), others hear that it left at once and the
// client gets the close code; the handshake gets CloseGrace, since a slow or
// silent client may never answer it, then the socket is dropped, which ends
// the read loop.
func (s *Server) closeKicked(ctx context.Context, cancel context.CancelFunc, ws *websocket.Conn, sock net.Conn, conn *hub.Conn) {
	select {
	case <-conn.Done():
	default:
		return // the reader ended first: the handler closes
	}
	if ctx.Err() != nil {
		return
	}
	code, why := conn.CloseStatus()
	s.Hub.Leave(conn, why)
	// Past the grace the socket itself is closed: when the read loop has
	// already returned, cancelling ctx ends nothing, and ws.Close waits up
	// to its own 5 s for a close frame from a client that is not reading
	// (CloseNow cannot cut a Close short) — that held up Shutdown.
	grace := time.AfterFunc(s.CloseGrace, func() {
		cancel()
		sock.Close()
	})
	defer grace.Stop()
	ws.Close(websocket.StatusCode(code), truncateReason(why))
	cancel()
}

// readHello reads frames until a valid hello arrives. Frames before hello
// are answered with an error and otherwise ignored; after HelloTimeout the
// connection is closed with CloseHelloTimeout.
func (s *Server) readHello(ctx context.Context, ws *websocket.Conn, codec Codec, log *slog.Logger) (*protocol.Hello, error) {
	timer := time.AfterFunc(s.HelloTimeout, func() {
		ws.Close(protocol.CloseHelloTimeout, fmt.Sprintf("no hello within %s", s.HelloTimeout))
	})
	defer timer.Stop()
	for {
		typ, data, err := ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		if typ != websocket.MessageText {
			s.write(ctx, ws, codec, binaryError(), "")
			continue
		}
		f, err := codec.Decode(data)
		if err != nil {
			perr := asProtoError(err)
			s.write(ctx, ws, codec, perr.Frame(), "")
			continue
		}
		if r, ok := f.(LocalReply); ok {
			s.write(ctx, ws, codec, r, "")
			continue
		}
		hello, ok := f.(*protocol.Hello)
		if !ok {
			s.write(ctx, ws, codec, &protocol.ErrorFrame{Ref: protocol.RefOf(f), Code: protocol.CodeHelloRequired,
				Message: "the first frame must be hello {\"type\":\"hello\",\"proto\":1,\"client_id\":\"…\"}; got " + f.Type()}, "")
			continue
		}
		if hello.Proto != protocol.Version {
			msg := fmt.Sprintf("this relay speaks protocol %d; the client asked for %d — upgrade the older side", protocol.Version, hello.Proto)
			s.write(ctx, ws, codec, &protocol.ErrorFrame{Code: protocol.CodeUnsupportedProto, Message: msg}, "")
			ws.Close(protocol.CloseBadHello, truncateReason(msg))
			return nil, errors.New(msg)
		}
		if !timer.Stop() {
			return nil, errors.New("hello arrived after the deadline")
		}
		log.Debug("hello", "client", hello.ClientID)
		return hello, nil
	}
}

// readLoop reads frames until the connection ends and returns why it ended.
//
// Its reads watch no context: the websocket library registers a callback
// on a read's context and removes it again for every read it makes (two or
// more a frame, an allocation each). When ctx ends the socket is closed
// instead, as the library's callback did, which ends the read in progress.
func (s *Server) readLoop(ctx context.Context, ws *websocket.Conn, sock net.Conn, codec Codec, conn *hub.Conn, lc *liveConn, log *slog.Logger) string {
	stop := context.AfterFunc(ctx, func() { sock.Close() })
	defer stop()
	rctx := context.WithoutCancel(ctx)
	for {
		typ, data, buf, err := readFrame(rctx, ws)
		if err != nil {
			releaseFrame(buf)
			switch st := websocket.CloseStatus(err); {
			case st == websocket.StatusNormalClosure || st == websocket.StatusGoingAway || st == websocket.StatusNoStatusRcvd: // 1005: a close frame without a code, as browsers send
				return "closed by client"
			case st == websocket.StatusMessageTooBig:
				return "frame too large"
			case st != -1:
				return fmt.Sprintf("client closed with %d", st)
			case ctx.Err() != nil:
				return "closed by relay"
			}
			if strings.Contains(err.Error(), "read limited") {
				return "frame too large"
			}
			log.Debug("read failed", "err", err)
			return "connection lost"
		}
		if typ != websocket.MessageText {
			releaseFrame(buf)
			conn.Push(binaryError())
			continue
		}
		lc.lastFrame.Store(time.Now().UnixNano())
		f, err := codec.Decode(data)
		releaseFrame(buf) // decoders copy what they keep
		if err != nil {
			conn.Push(asProtoError(err).Frame())
			continue
		}
		if r, ok := f.(LocalReply); ok {
			conn.Push(r)
			continue
		}
		conn.Handle(ctx, f)
	}
}

// writeLoop writes what the hub hands the connection until ctx ends or the
// hub closes it. While it waits, a sender whose message wakes the
// connection writes the frames itself (hub.Conn.SetInlineWriter): a round
// trip then costs no hand-off to this goroutine, which on a busy machine
// is the larger part of its latency.
// Each burst is written with one flush; each frame's writes are bounded
// by WriteTimeout through the socket's deadline, and when ctx ends the
// socket's writes are cut short at once.
func (s *Server) writeLoop(ctx context.Context, ws *websocket.Conn, bc *batchConn, codec Codec, conn *hub.Conn, log *slog.Logger) {
	stop := context.AfterFunc(ctx, bc.abort)
	defer stop()
	wctx := context.WithoutCancel(ctx) // bounded by the deadline instead
	conn.SetInlineWriter(inlineWriter{bc, func(frames []protocol.Frame) { s.writeBurst(ctx, wctx, ws, bc, codec, conn, log, frames) }})
	defer conn.SetInlineWriter(nil)
	var buf []protocol.Frame
	for {
		frames, err := conn.Next(ctx, buf)
		if err != nil || frames == nil {
			return
		}
		ok := s.writeBurst(ctx, wctx, ws, bc, codec, conn, log, frames)
		conn.Wrote()
		if !ok {
			return
		}
		buf = frames
	}
}

// inlineWriter is how a sender's goroutine writes to this connection when
// its writer is idle (hub.Conn.wakeHere).
type inlineWriter struct {
	bc    *batchConn
	write func([]protocol.Frame)
}

func (w inlineWriter) Room() int                     { return w.bc.room() }
func (w inlineWriter) Write(frames []protocol.Frame) { w.write(frames) }

// writeBurst writes frames with one flush, on the writer or on a sender
// holding the connection's write role. A write that fails closes the
// connection as a slow consumer; it reports false then.
func (s *Server) writeBurst(ctx, wctx context.Context, ws *websocket.Conn, bc *batchConn, codec Codec, conn *hub.Conn, log *slog.Logger, frames []protocol.Frame) bool {
	var lastSeq uint64
	var err error
	bc.begin()
	for _, f := range frames {
		bc.frame(s.WriteTimeout)
		err = s.writeBounded(wctx, ws, codec, f, conn.ID(), &bc.enc)
		if err != nil {
			break
		}
		if m, ok := f.(*protocol.Message); ok {
			lastSeq = m.Seq
			s.counters.messagesOut.Add(1)
		}
	}
	if ferr := bc.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		if ctx.Err() == nil {
			log.Info("write failed; closing as slow consumer", "err", err)
			conn.Kick(protocol.CloseSlowConsumer, protocol.CloseReason(protocol.CloseSlowConsumer))
		}
		return false
	}
	if lastSeq > 0 && codec.AutoAck() {
		conn.Handle(ctx, &protocol.Ack{Upto: lastSeq})
	}
	return true
}

// write writes one frame within WriteTimeout.
func (s *Server) write(ctx context.Context, ws *websocket.Conn, codec Codec, f protocol.Frame, self string) error {
	ctx, cancel := context.WithTimeout(ctx, s.WriteTimeout)
	defer cancel()
	var buf []byte
	return s.writeBounded(ctx, ws, codec, f, self, &buf)
}

// maxEncodeBuf is the largest encoding buffer a connection keeps between
// frames: one for a large message is let go.
const maxEncodeBuf = 64 << 10

// writeBounded writes one frame, encoded into *buf (which it keeps for the
// next, up to maxEncodeBuf: the websocket library copies the frame, so one
// buffer serves every frame of a connection's writer); ctx or the socket's
// deadline bounds it.
func (s *Server) writeBounded(ctx context.Context, ws *websocket.Conn, codec Codec, f protocol.Frame, self string, buf *[]byte) error {
	b, ok, err := codec.AppendEncode((*buf)[:0], f, self)
	if cap(b) <= maxEncodeBuf {
		*buf = b
	}
	if err != nil {
		s.Logger.Error("encoding frame failed", "type", f.Type(), "err", err)
		return nil
	}
	if !ok {
		return nil
	}
	return ws.Write(ctx, websocket.MessageText, b)
}

func binaryError() *protocol.ErrorFrame {
	return &protocol.ErrorFrame{Code: protocol.CodeBadJSON, Message: "binary WebSocket messages are not accepted; send each frame as a JSON text message"}
}

func asProtoError(err error) *protocol.Error {
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return perr
	}
	return &protocol.Error{Code: protocol.CodeBadJSON, Message: err.Error()}
}

// truncateReason keeps a close reason within the 123 bytes a close frame
// allows.
func truncateReason(s string) string {
	if len(s) <= 120 {
		return s
	}
	return s[:117] + "..."
}
