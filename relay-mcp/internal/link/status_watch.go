package link

import (
	"context"
	"errors"

	"github.com/claude-relay/claude-relay/protocol"
)

// SetStatus sets the session's status line (its current task), shown to
// peers. It is kept and repeated in hello on every reconnect; ErrOffline
// means it is kept and peers see it once the relay is back. A status the
// relay's rules refuse (checked here first, then by the relay) is not
// kept: it would be refused again in every hello. The error is a
// *protocol.Error or a *RelayError then.
func (l *Link) SetStatus(ctx context.Context, status string) error {
	ref := NewRef()
	f := &protocol.Status{Ref: ref, Status: status}
	if err := protocol.Validate(f); err != nil {
		return err
	}
	l.mu.Lock()
	prev := l.cfg.Hello.Status
	l.cfg.Hello.Status = status
	l.mu.Unlock()
	_, err := l.Request(ctx, ref, f)
	var re *RelayError
	if errors.As(err, &re) {
		l.mu.Lock()
		if l.cfg.Hello.Status == status {
			l.cfg.Hello.Status = prev
		}
		l.mu.Unlock()
	}
	return err
}

// OwnStatus is the status line this session set.
func (l *Link) OwnStatus() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg.Hello.Status
}

// Watch subscribes this connection to mail events for ids (Config.OnMail
// receives them). A watch lasts as long as the connection: call it again
// after each reconnect.
func (l *Link) Watch(ctx context.Context, ids []string) error {
	ref := NewRef()
	_, err := l.Request(ctx, ref, &protocol.Watch{Ref: ref, IDs: ids})
	return err
}
