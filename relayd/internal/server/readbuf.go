package server

import (
	"bytes"
	"context"
	"sync"

	"github.com/coder/websocket"
)

// websocket.Conn.Read allocates a fresh, growing buffer for every frame. The
// reader reads into a pooled buffer instead, taken only once a frame has
// begun (an idle connection holds none, so idle connections cost no more)
// and given back as soon as the frame is decoded: nothing decoded keeps a
// reference to it (decoders copy every string out).

// maxPooledRead bounds the buffers kept in the pool, so one large frame does
// not keep its buffer alive.
const maxPooledRead = 64 << 10

var readBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readFrame reads one message as ws.Read does, into buf (nil when there
// was no message). Hand buf to releaseFrame once data is decoded; data must
// not be kept.
func readFrame(ctx context.Context, ws *websocket.Conn) (typ websocket.MessageType, data []byte, buf *bytes.Buffer, err error) {
	typ, r, err := ws.Reader(ctx)
	if err != nil {
		return 0, nil, nil, err
	}
	buf = readBufs.Get().(*bytes.Buffer)
	buf.Reset()
	_, err = buf.ReadFrom(r)
	return typ, buf.Bytes(), buf, err
}

// releaseFrame gives a buffer of readFrame back to the pool.
func releaseFrame(buf *bytes.Buffer) {
	if buf != nil && buf.Cap() <= maxPooledRead {
		readBufs.Put(buf)
	}
}
