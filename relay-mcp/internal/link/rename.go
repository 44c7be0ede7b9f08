package link

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/claude-relay/claude-relay/protocol"
	"github.com/claude-relay/claude-relay/relay-mcp/internal/inbox"
	"github.com/coder/websocket"
)

type renameReq struct {
	id   string
	dir  string     // the new id's inbox directory
	done chan error // the switch was made (nil) or failed
}

// RenameResult says what a rename did.
type RenameResult struct {
	Old, New string
	Applied  bool // the session is the new id now (an error may still say what went wrong after)
	Moved    int  // unread messages carried over from the old id's inbox and mailbox
}

// Rename moves the session to id without a restart: the connection as the
// old id closes (the relay shows it leaving), the inbox and outbox switch
// to dir (the new id's, under the same home), and the link connects as id.
// Then it drains the old id once: a quiet connection as the old id takes
// what the relay still held for it (mail in flight during the switch), and
// every unread message of the old inbox is moved into the new one. Mail
// sent to the old id after that is queued for the old id by the relay (its
// sender is told "queued") and read when a session comes back as it.
//
// It refuses when id is online (taking it over would knock that session
// offline), while sends wait in the outbox (they would leave under the
// wrong id), and while the relay is unreachable.
func (l *Link) Rename(ctx context.Context, id, dir string) (RenameResult, error) {
	if err := protocol.ValidateID(id); err != nil {
		return RenameResult{}, fmt.Errorf("bad id: %v", err)
	}
	old := l.ClientID()
	res := RenameResult{Old: old, New: id}
	if id == old {
		return res, fmt.Errorf("this session is %s already", id)
	}
	if !l.online() {
		return res, fmt.Errorf("relay offline (%s): a rename needs the relay to check that %s is free; try again once relay_status says connected", offlineReason(l.Status()), id)
	}
	if l.cfg.Outbox != nil && l.cfg.Outbox.Len() > 0 {
		return res, fmt.Errorf("%d send(s) still wait in the outbox and would leave as %s; try again once they are sent (relay_status)", l.cfg.Outbox.Len(), id)
	}
	peers, err := l.RequestPeers(ctx)
	if err != nil {
		return res, fmt.Errorf("could not ask the relay who is online: %w", err)
	}
	for _, p := range peers {
		if p.ID == id {
			return res, fmt.Errorf("%s is online (host %s pid %d); pick another id — taking it over would knock that session offline", id, p.Host, p.PID)
		}
	}
	oldDir := l.cfg.Inbox.Dir()

	req := &renameReq{id: id, dir: dir, done: make(chan error, 1)}
	l.mu.Lock()
	if l.rename != nil {
		l.mu.Unlock()
		return res, errors.New("another rename is under way")
	}
	l.rename = req
	conn := l.conn
	l.mu.Unlock()
	if conn != nil {
		go conn.Close(websocket.StatusNormalClosure, "renaming to "+id)
	}
	select {
	case err := <-req.done:
		if err != nil {
			return res, err
		}
	case <-ctx.Done():
		l.mu.Lock()
		if l.rename == req {
			l.rename = nil
		}
		l.mu.Unlock()
		return res, ctx.Err()
	}
	res.Applied = true
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.WaitCaughtUp(cctx); err != nil {
		return res, fmt.Errorf("renamed to %s, but not connected yet (%v); relay_status shows the link", id, err)
	}
	moved, err := l.drain(cctx, old, oldDir)
	res.Moved = moved
	if err != nil {
		return res, fmt.Errorf("renamed to %s, but could not take the old id's mail (%v); it waits for %s on the relay", id, err, old)
	}
	return res, nil
}

// applyRename makes a requested rename between two connections (on Run's
// goroutine, with no connection live). It reports whether it did.
func (l *Link) applyRename() bool {
	l.mu.Lock()
	req := l.rename
	l.rename = nil
	l.mu.Unlock()
	if req == nil {
		return false
	}
	oldDir := l.cfg.Inbox.Dir()
	err := l.cfg.Inbox.SwitchDir(req.dir)
	if err == nil && l.cfg.Outbox != nil {
		err = l.cfg.Outbox.SwitchDir(req.dir)
	}
	if err != nil {
		l.log.Error("rename failed; staying on the old id", "err", err)
		l.cfg.Inbox.SwitchDir(oldDir)
		if l.cfg.Outbox != nil {
			l.cfg.Outbox.SwitchDir(oldDir)
		}
		req.done <- err
		return true
	}
	l.mu.Lock()
	old := l.cfg.Hello.ClientID
	l.cfg.Hello.ClientID = req.id
	l.setStateLocked(StateConnecting, "") // until the welcome as the new id
	l.mu.Unlock()
	l.log.Info("renamed", "old", old, "new", req.id)
	req.done <- nil
	return true
}

// drain connects once, quietly and without taking over, as the old id,
// stores what the relay still held for it in the old inbox, and moves the
// old inbox's unread mail into the current one.
func (l *Link) drain(ctx context.Context, oldID, oldDir string) (int, error) {
	old, err := inbox.Open(oldDir, inbox.Options{})
	if err != nil {
		return 0, err
	}
	defer old.Close()
	l.mu.Lock()
	cfg := l.cfg
	l.mu.Unlock()
	cfg.Hello.ClientID, cfg.Hello.Quiet, cfg.Hello.NoTakeover, cfg.Hello.Status = oldID, true, true, ""
	cfg.Inbox, cfg.Outbox, cfg.OnMessages, cfg.OnPresence, cfg.OnMail = old, nil, nil, nil, nil
	var werr error
	// The relay may not have seen the old connection go yet: an id in use
	// is tried again for a moment.
	for try := 0; try < 10; try++ {
		d := New(cfg)
		dctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); d.Run(dctx) }()
		werr = d.WaitCaughtUp(dctx)
		if werr == nil {
			// Ack what was taken, so the relay stops holding it for the
			// old id (and its watchers stop hearing of it).
			if err := d.ackHeld(dctx); err != nil {
				l.log.Warn("could not ack the old id's mail; the relay resends it to that id (read already)", "id", oldID, "err", err)
			}
		}
		cancel()
		wg.Wait()
		if werr == nil || d.Status().StopCode != protocol.CloseIDInUse {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	if werr != nil {
		// Someone took the old id meanwhile (its mail is theirs now), or
		// the relay went away: move what the old inbox holds anyway.
		l.log.Warn("could not drain the old id on the relay", "id", oldID, "err", werr)
	}
	return l.cfg.Inbox.TakeUnread(old)
}

// ackHeld acks everything the inbox holds and waits until the relay has
// handled the ack (a request after it is answered in order).
func (l *Link) ackHeld(ctx context.Context) error {
	l.mu.Lock()
	conn := l.conn
	l.mu.Unlock()
	if conn == nil {
		return ErrOffline
	}
	if err := l.cfg.Inbox.Sync(); err != nil {
		return err
	}
	if seq := l.cfg.Inbox.ResumeAfter(); seq > 0 {
		if err := l.write(ctx, conn, &protocol.Ack{Upto: seq}); err != nil {
			return err
		}
	}
	_, err := l.RequestPeers(ctx)
	return err
}

func offlineReason(st Status) string {
	if st.LastError != "" {
		return st.LastError
	}
	return string(st.State)
}
