package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FileName is the name of the database file inside the data directory.
const FileName = "relay.db"

// Log attribute keys used by the store.
const (
	logKeyPath   = "path"
	logKeyErr    = "err"
	logKeyBatch  = "batch"
	logKeyClient = "client"
)

// Options tunes the SQLite store. The zero value is ready to use.
type Options struct {
	// Logger receives warnings: a database opened read-only, write
	// failures and the recovery that follows them. Defaults to a logger
	// that discards everything.
	Logger *slog.Logger
	// MaxBatch caps how many queued writes (appends, acks, touches …)
	// share one transaction. Defaults to 512: large enough that a burst
	// from many senders costs a handful of commits, small enough that one
	// transaction never holds the write lock for long.
	MaxBatch int
	// Linger is how long the committer waits for more writes once the
	// first one arrived, before it commits. Defaults to 0: writes that
	// arrive while a commit is running already form the next batch, so
	// waiting only adds latency for a lone sender.
	Linger time.Duration
	// BusyTimeout is how long a statement waits for a lock another process
	// holds on the file (a backup, an sqlite3 shell) before failing.
	// Defaults to 5s.
	BusyTimeout time.Duration
}

// SQLite is a Store kept in one SQLite file (WAL mode). Writes go through a
// single committer goroutine that groups whatever is waiting into one
// transaction (group commit); reads run on a small pool of read-only
// connections beside it, which WAL allows while a write is in progress.
//
// Durability: the file uses journal_mode=WAL with synchronous=NORMAL. A
// commit appends its pages to the WAL with write(2) before COMMIT returns, so
// once Append returns the message is in the kernel's page cache and survives
// kill -9 (or a crash) of relayd: the next open replays the WAL. What NORMAL
// gives up is an fsync per commit, so a power cut or kernel crash may lose
// the last commits (never corrupt the file). That is the trade SQLite
// documents for WAL+NORMAL, and it is what makes 20 000+ messages/s possible.
type SQLite struct {
	path     string
	log      *slog.Logger
	w        *sql.DB // exactly one connection: the committer's
	r        *sql.DB // read-only connections for Pending, History …
	unlock   func()  // releases the data-directory lock
	maxBatch int
	linger   time.Duration
	// pruneChunk is how many messages one Prune transaction deletes. Prune
	// runs as a series of such transactions so that appends queued behind
	// it wait for one chunk (milliseconds), not for the whole expiry.
	pruneChunk int

	ops       chan *op
	quit      chan struct{} // closed by Close: stop taking new writes
	stopped   chan struct{} // closed when the committer has exited
	closeOnce sync.Once
	closeErr  error

	// mu guards the committed state that is kept in memory so that the
	// hot paths (Append's maxQueue check, LastSeq, Unacked, Known) need
	// no query. The committer updates it after each commit; the file is
	// the truth and the cache is rebuilt from it at open.
	mu       sync.RWMutex
	boxes    map[string]boxState
	sessions map[string]bool
	// assigned is, per mailbox, the last seq Submit handed out: committed
	// or on its way. Seqs are never handed out twice in one process, even
	// when a commit fails.
	assigned map[string]uint64
	// submitMu makes Submit's seq order the committer's order.
	submitMu sync.Mutex
	// refsMu guards refs and inFlight: Submit reads the windows, the
	// committer writes.
	refsMu sync.Mutex
	// recent holds, per mailbox, the deliveries committed last, so that
	// a writer woken by an append reads them back without a query. Also
	// guarded by mu; see recent.go.
	recent      map[string]*recentBox
	recentBytes int
	// lastRead is, per client, its last read report (unix ns; the reads
	// table), for ReadStates. Also guarded by mu.
	lastRead map[string]int64

	// refs are the send refs of the clients that sent since open, loaded
	// from the refs table on their first send. Guarded by refsMu.
	refs map[string]*clientRefs
	// inFlight holds the sends with a ref submitted and not settled yet:
	// a retry of one is answered with its outcome instead of getting
	// seqs of its own (see Submit). Guarded by refsMu.
	inFlight map[refKey]*pendingAppend

	// Owned by the committer goroutine.
	prepared map[string]*sql.Stmt // by query text
	nextRid  int64                // messages.rid of the next message; 0: read it from the file
	b        batch                // reused by every commit
	stale    map[string]bool      // boxes whose cached state may not match the file after a failed commit
	failing  bool                 // the last commit failed: log the recovery once

	// writeErr is the error of the last commit while the disk refuses
	// writes (ErrUnavailable), nil once one succeeds: Touch, which does
	// not wait for its commit, answers with it.
	writeErr atomic.Pointer[error]

	// hookInTx, when set (tests only), runs first in every write
	// transaction; an error fails the batch as a disk error would.
	hookInTx atomic.Pointer[func(*sql.Tx) error]
}

type boxState struct {
	last    uint64
	acked   uint64
	unacked int
	// unread counts the entries not read yet (read_at = 0): the peer
	// list shows it beside every peer at each send, which a count(*)
	// over the mailbox made dearer the longer the mailbox grew.
	unread int
	// readThrough: every entry up to this seq is read (a MarkRead up to
	// it ran), so the next MarkRead up to a seq looks only past it. The
	// older protocol's clients mark read after every burst their writer
	// sends: a scan from the start of the mailbox each time made a
	// conversation dearer the longer it ran. Not in the file: after a
	// restart the first MarkRead scans once.
	readThrough uint64
}

// Open opens (creating if needed) the store in dir/relay.db and starts its
// committer. The caller must Close it.
//
// A database file that cannot be written (read-only file) is still opened:
// reads work and writes fail with ErrUnavailable until it becomes writable.
func Open(ctx context.Context, dir string, opts Options) (*SQLite, error) {
	s := &SQLite{
		path:       filepath.Join(dir, FileName),
		log:        opts.Logger,
		maxBatch:   opts.MaxBatch,
		pruneChunk: 2000,
		linger:     opts.Linger,
		boxes:      map[string]boxState{},
		sessions:   map[string]bool{},
		assigned:   map[string]uint64{},
		recent:     map[string]*recentBox{},
		lastRead:   map[string]int64{},
		refs:       map[string]*clientRefs{},
		inFlight:   map[refKey]*pendingAppend{},
		stale:      map[string]bool{},
		prepared:   map[string]*sql.Stmt{},
		ops:        make(chan *op, 1024),
		quit:       make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.maxBatch <= 0 {
		s.maxBatch = 512
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	if strings.ContainsRune(s.path, '?') {
		// The driver splits its DSN at '?'.
		return nil, fmt.Errorf("open message store: the data directory %q contains '?', which SQLite file names cannot hold — choose another --data-dir", dir)
	}
	unlock, err := takeDataDir(dir, JournalFile)
	if err != nil {
		return nil, err
	}
	s.unlock = unlock
	if err := s.open(ctx, busy); err != nil {
		s.closeDBs()
		return nil, err
	}
	go s.commitLoop()
	return s, nil
}

// takeDataDir creates dir if needed, checks that it can hold new files and
// does not hold other, the other durable store's file, and locks it for
// this process (lockDir): what every durable store does first.
func takeDataDir(dir, other string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w — check the path and its permissions, or choose another --data-dir", dir, err)
	}
	if err := checkWritableDir(dir); err != nil {
		return nil, err
	}
	if err := refuseOtherStore(dir, other); err != nil {
		return nil, err
	}
	return lockDir(dir)
}

// refuseOtherStore refuses a data directory that holds other, the other
// durable store's file: the store would start empty beside it (and create
// its own file there), and the mail in it would seem lost. Every opener
// meets it: relayd, relayd doctor.
func refuseOtherStore(dir, other string) error {
	if !fileExists(filepath.Join(dir, other)) {
		return nil
	}
	kind, otherKind, convert := "journal", "sqlite", ", convert it (stop relayd, then relayd convert)"
	if other == JournalFile {
		kind, otherKind, convert = "sqlite", "journal", ""
	}
	return fmt.Errorf("data directory %s holds %s, the %s store's file: relayd --store %s would start empty beside it — start with --store %s (or --store auto, the default: the store the directory holds)%s, or give the %s store another --data-dir (docs/operations.md, \"The journal store\")",
		dir, other, otherKind, kind, otherKind, convert, kind)
}

// checkWritableDir fails early, with a message that names the fix, when the
// data directory cannot hold new files: SQLite needs to create the WAL and
// shared-memory files beside the database, and its own error for that is an
// unhelpful "unable to open database file".
func checkWritableDir(dir string) error {
	f, err := os.CreateTemp(dir, ".relayd-probe-*")
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w — make it writable by the user running relayd (chmod u+rwx %s) or choose another --data-dir", dir, err, dir)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}

func (s *SQLite) open(ctx context.Context, busy time.Duration) error {
	ms := busy.Milliseconds()
	// synchronous=NORMAL is safe against kill -9 in WAL mode: see the SQLite
	// type's comment. _txlock=immediate takes the write lock at BEGIN, so a
	// transaction never fails half-way with SQLITE_BUSY on lock upgrade.
	//
	// Every commit rewrites the same few right-most b-tree pages; letting
	// the WAL grow to 8192 pages (32 MiB, the default is 1000) before a
	// checkpoint copies each such page to the main file once per 8192
	// frames, and fsyncs eight times less often. journal_size_limit gives
	// the space back after. A 32 MiB page cache keeps the indexes of a
	// million-message store in memory.
	wdsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"+
		"&_pragma=wal_autocheckpoint(8192)&_pragma=journal_size_limit(67108864)&_pragma=cache_size(-32768)&_txlock=immediate", s.path, ms)
	rdsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=query_only(1)&_pragma=cache_size(-8192)", s.path, ms)
	var err error
	if s.w, err = sql.Open("sqlite", wdsn); err != nil {
		return fmt.Errorf("open message store %s: %w", s.path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	if err := s.migrate(ctx); err != nil {
		return err
	}
	// Prepared on the pool (not on a connection) so that each transaction
	// can bind them, whichever connection it runs on after a reconnect.
	queries := []string{qPutBox, qTouch, qStampDelivered, qReadUpto, qReadIDs, qLastRead}
	for _, n := range chunkSizes {
		queries = append(queries, qPutMessages(n), qPutEntries(n))
	}
	for _, q := range queries {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return s.openError("prepare statements for", err)
		}
		s.prepared[q] = st
	}
	if s.r, err = sql.Open("sqlite", rdsn); err != nil {
		return fmt.Errorf("open message store %s: %w", s.path, err)
	}
	s.r.SetMaxOpenConns(4)
	s.r.SetMaxIdleConns(4)
	if err := s.load(ctx); err != nil {
		return s.openError("read the mailboxes of", err)
	}
	// SQLite falls back to read-only when the file cannot be opened for
	// writing; say so now rather than at the first refused message.
	if f, err := os.OpenFile(s.path, os.O_RDWR, 0); err != nil {
		s.log.Warn("message store file is read-only: relayd delivers what is stored but refuses new messages until the file is writable again (chmod u+w)", logKeyPath, s.path, logKeyErr, err)
	} else {
		f.Close()
	}
	return nil
}

// load fills the in-memory cache from the file.
func (s *SQLite) load(ctx context.Context) error {
	boxes, err := s.readBoxes(ctx, nil)
	if err != nil {
		return err
	}
	rows, err := s.r.QueryContext(ctx, "SELECT id FROM sessions")
	if err != nil {
		return err
	}
	defer rows.Close()
	sessions := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		sessions[id] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	lastRead, err := s.readLastReads(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.boxes, s.sessions, s.lastRead = boxes, sessions, lastRead
	s.mu.Unlock()
	return nil
}

// readBoxes reads the committed state of the given mailboxes (all when ids
// is nil). A mailbox absent from the result does not exist.
func (s *SQLite) readBoxes(ctx context.Context, ids []string) (map[string]boxState, error) {
	// boxes.last_seq is only brought up to date when entries are about to
	// be deleted (Clear, Prune) or acked; between those, the newest entry
	// holds the last seq. That spares Append a page write per recipient.
	q := `SELECT b.recipient,
	max(b.last_seq, coalesce((SELECT max(m.seq) FROM mailbox m WHERE m.recipient = b.recipient), 0)),
	b.acked,
	(SELECT count(*) FROM mailbox m WHERE m.recipient = b.recipient AND m.seq > b.acked),
	(SELECT count(*) FROM mailbox m WHERE m.recipient = b.recipient AND m.read_at = 0)
	FROM boxes b`
	var args []any
	if ids != nil {
		js, _ := json.Marshal(ids)
		q += " WHERE b.recipient IN (SELECT value FROM json_each(?))"
		args = append(args, string(js))
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]boxState{}
	for rows.Next() {
		var id string
		var last, acked int64
		var unacked, unread int
		if err := rows.Scan(&id, &last, &acked, &unacked, &unread); err != nil {
			return nil, err
		}
		out[id] = boxState{last: uint64(last), acked: uint64(acked), unacked: unacked, unread: unread}
	}
	return out, rows.Err()
}

// Close stops taking writes, lets the committer finish what is queued, and
// closes the file.
func (s *SQLite) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.stopped
		s.closeErr = s.closeDBs()
	})
	return s.closeErr
}

func (s *SQLite) closeDBs() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		// Closing the last connection checkpoints the WAL into the main
		// file and removes the -wal and -shm files.
		errs = append(errs, s.w.Close())
	}
	if s.unlock != nil {
		s.unlock()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close message store %s: %w", s.path, err)
	}
	return nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

var _ Store = (*SQLite)(nil)
