package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqlite "modernc.org/sqlite"
)

// FileName is the name of the database file inside the data directory.
const FileName = "relay.db"

// Log attribute keys used by the store.
const (
	logKeyPath  = "path"
	logKeyErr   = "err"
	logKeyBatch = "batch"
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
	// refsMu guards refs: Submit reads the windows, the committer writes.
	refsMu sync.Mutex
	// recent holds, per mailbox, the deliveries committed last, so that
	// a writer woken by an append reads them back without a query. Also
	// guarded by mu; see recent.go.
	recent      map[string]*recentBox
	recentBytes int

	// refs are the send refs of the clients that sent since open, loaded
	// from the refs table on their first send. Guarded by refsMu.
	refs map[string]*clientRefs

	// Owned by the committer goroutine.
	prepared map[string]*sql.Stmt // by query text
	nextRid  int64                // messages.rid of the next message; 0: read it from the file
	b        batch                // reused by every commit
	stale    map[string]bool      // boxes whose cached state may not match the file after a failed commit
	failing  bool                 // the last commit failed: log the recovery once

	// hookInTx, when set (tests only), runs first in every write
	// transaction; an error fails the batch as a disk error would.
	hookInTx atomic.Pointer[func(*sql.Tx) error]
}

type boxState struct {
	last    uint64
	acked   uint64
	unacked int
}

// migrations are the schema steps; migrations[i] moves the file from
// user_version i to i+1. Append new steps, never edit a released one.
var migrations = []string{
	// 1: sessions, messages stored once, one mailbox row per recipient.
	`
CREATE TABLE sessions (
	id         TEXT PRIMARY KEY,
	host       TEXT NOT NULL,
	pid        INTEGER NOT NULL,
	cwd        TEXT NOT NULL,
	agent      TEXT NOT NULL,
	label      TEXT NOT NULL,
	first_seen INTEGER NOT NULL, -- unix nanoseconds, 0 for unknown
	last_seen  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE messages (
	rid            INTEGER PRIMARY KEY, -- internal key the mailbox rows point at
	id             TEXT NOT NULL UNIQUE, -- UUIDv7: sorts by time as text
	sender         TEXT NOT NULL,
	recipients     TEXT NOT NULL, -- JSON array, as the sender wrote it
	body           TEXT NOT NULL,
	ts             INTEGER NOT NULL, -- unix nanoseconds
	reply_to       TEXT NOT NULL,
	thread         TEXT NOT NULL,
	sender_cleared INTEGER NOT NULL DEFAULT 0 -- the sender removed it from its history
);
CREATE INDEX messages_by_sender ON messages(sender);
CREATE INDEX messages_by_ts ON messages(ts);

-- One row per mailbox: the client's ack, and the highest seq ever assigned
-- as of the last ack, clear or prune. The real last seq is the larger of
-- last_seq and the newest mailbox entry; keeping last_seq here is what stops
-- a seq from being reused once Clear or Prune removed that entry.
CREATE TABLE boxes (
	recipient TEXT PRIMARY KEY,
	last_seq  INTEGER NOT NULL,
	acked     INTEGER NOT NULL
) WITHOUT ROWID;

-- Integrity between mailbox.msg and messages.rid is kept by the store
-- itself (Prune and Clear delete both sides); a foreign key would only add
-- a lookup to every insert.
CREATE TABLE mailbox (
	recipient TEXT NOT NULL,
	seq       INTEGER NOT NULL,
	msg       INTEGER NOT NULL,
	PRIMARY KEY (recipient, seq)
) WITHOUT ROWID;
CREATE INDEX mailbox_by_msg ON mailbox(msg);
`,
	// 2: send refs, so that a send retried after a restart of relayd is
	// recognised and not stored twice.
	`
CREATE TABLE refs (
	client     TEXT NOT NULL,
	ref        TEXT NOT NULL,
	n          INTEGER NOT NULL, -- per client, one more for each send: the newest RefWindow are kept
	digest     BLOB NOT NULL,    -- of the send's content: the same ref with other content is a new message
	msg_id     TEXT NOT NULL,
	ts         INTEGER NOT NULL, -- unix nanoseconds, as the message's
	recipients TEXT NOT NULL,    -- JSON array: the mailboxes it was offered to
	seqs       TEXT NOT NULL,    -- JSON array: the seq it got in each, 0 when the mailbox was full
	PRIMARY KEY (client, ref)
) WITHOUT ROWID;
`,
	// 3: read receipts (sqlite_receipts.go).
	migrationReceipts,
	// 4: conversations, so that one thread's history is an index range
	// (sqlite_thread.go). IF NOT EXISTS: an index only, safe in any order
	// with the other steps added beside it.
	`CREATE INDEX IF NOT EXISTS messages_by_thread ON messages(thread, rid) WHERE thread != '';`,
}

// Statements the committer runs for every batch, prepared once at open.
const (
	qPutBox = `INSERT INTO boxes(recipient, last_seq, acked) VALUES (?, ?, ?)
		ON CONFLICT(recipient) DO UPDATE SET last_seq = excluded.last_seq, acked = excluded.acked`
	// first_seen keeps its first value; the rest is the latest word.
	qTouch = `INSERT INTO sessions(id, host, pid, cwd, agent, label, first_seen, last_seen)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET host = excluded.host, pid = excluded.pid, cwd = excluded.cwd,
			agent = excluded.agent, label = excluded.label, last_seen = excluded.last_seen`
)

// A batch's messages and mailbox entries go in with multi-row INSERTs, in
// chunks of these sizes: one statement for many rows costs far less than
// one per row.
var chunkSizes = []int{64, 16, 4, 1}

const (
	msgColumns   = 8 // rid, id, sender, recipients, body, ts, reply_to, thread
	entryColumns = 3 // recipient, seq, msg
)

func qPutMessages(n int) string {
	return "INSERT INTO messages(rid, id, sender, recipients, body, ts, reply_to, thread) VALUES " +
		strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?), ", n-1) + "(?, ?, ?, ?, ?, ?, ?, ?)"
}

func qPutEntries(n int) string {
	return "INSERT INTO mailbox(recipient, seq, msg) VALUES " + strings.Repeat("(?, ?, ?), ", n-1) + "(?, ?, ?)"
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
		refs:       map[string]*clientRefs{},
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
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w — check the path and its permissions, or choose another --data-dir", dir, err)
	}
	if err := checkWritableDir(dir); err != nil {
		return nil, err
	}
	unlock, err := lockDir(dir)
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
	queries := []string{qPutBox, qTouch}
	for _, n := range chunkSizes {
		queries = append(queries, qPutMessages(n), qPutEntries(n), qPutRefs(n))
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

// migrate brings the schema to the version this code knows, refusing a
// file written by a newer relayd.
func (s *SQLite) migrate(ctx context.Context) error {
	var v int
	if err := s.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return s.openError("read the schema version of", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("message store %s was written by a newer relayd (schema version %d, this relayd knows up to %d) — upgrade relayd, or start this one with another --data-dir", s.path, v, len(migrations))
	}
	if v == len(migrations) {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.openError("start the schema upgrade of", err)
	}
	defer tx.Rollback()
	// Another relayd may have migrated between our read and BEGIN
	// IMMEDIATE; read again under the write lock.
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return s.openError("read the schema version of", err)
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return s.openError(fmt.Sprintf("upgrade (step %d) the schema of", i+1), err)
		}
	}
	// PRAGMA takes no parameters; the value is a trusted integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return s.openError("record the schema version of", err)
	}
	if err := tx.Commit(); err != nil {
		return s.openError("commit the schema upgrade of", err)
	}
	return nil
}

// openError turns a driver error met while opening into one that names the
// file and what to do about it.
func (s *SQLite) openError(doing string, err error) error {
	switch sqliteCode(err) {
	case codeCorrupt, codeNotADB:
		return fmt.Errorf("%s message store %s: %w — the file is damaged or is not a relayd database: stop relayd, move it aside (mv %s %s.broken) and restore it from a backup, or start with an empty store", doing, s.path, err, s.path, s.path)
	case codeReadOnly, codePerm, codeCantOpen:
		return fmt.Errorf("%s message store %s: %w — make the file and its directory writable by the user running relayd, or choose another --data-dir", doing, s.path, err)
	case codeFull:
		return fmt.Errorf("%s message store %s: %w — the disk is full: free some space and start relayd again", doing, s.path, err)
	case codeBusy, codeLocked:
		return fmt.Errorf("%s message store %s: %w — another process holds the database lock: stop it (another relayd, an sqlite3 shell) and try again", doing, s.path, err)
	}
	return fmt.Errorf("%s message store %s: %w", doing, s.path, err)
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
	s.mu.Lock()
	s.boxes, s.sessions = boxes, sessions
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
	(SELECT count(*) FROM mailbox m WHERE m.recipient = b.recipient AND m.seq > b.acked)
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
		var unacked int
		if err := rows.Scan(&id, &last, &acked, &unacked); err != nil {
			return nil, err
		}
		out[id] = boxState{last: uint64(last), acked: uint64(acked), unacked: unacked}
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

// ---- group commit ----

const (
	opQueued    int32 = iota
	opTaken           // the committer has it: the caller must wait for the result
	opWithdrawn       // the caller gave up before the committer took it
)

// op is one write waiting for the committer. apply runs inside the batch's
// transaction; it may run twice (once in a batch that failed, once alone)
// so it must set its results, not accumulate them.
type op struct {
	state atomic.Int32
	apply func(*batch) error
	err   error
	done  chan struct{} // nil for an async op
	after func(error)   // runs on the committer once the op's outcome is known; async ops only

}

// write hands fn to the committer and waits until its transaction has
// committed (or failed).
func (s *SQLite) write(ctx context.Context, fn func(*batch) error) error {
	// Checked first because select picks at random among ready cases: a
	// dead context must never get its write queued.
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &op{apply: fn, done: make(chan struct{})}
	select {
	case <-s.quit:
		return s.closedError()
	default:
	}
	select {
	case s.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return s.closedError()
	}
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opWithdrawn) {
			return ctx.Err()
		}
		// Already in a transaction: its outcome is moments away, and
		// reporting "cancelled" for a message that was stored would make
		// the sender send it again.
		select {
		case <-o.done:
			return o.err
		case <-s.stopped:
		}
	case <-s.stopped:
	}
	// The committer answers every op it took before it exits.
	select {
	case <-o.done:
		return o.err
	default:
		return s.closedError()
	}
}

func (s *SQLite) closedError() error {
	return fmt.Errorf("%w: message store %s is closed (relayd is shutting down)", ErrUnavailable, s.path)
}

func (s *SQLite) commitLoop() {
	defer close(s.stopped)
	ops := make([]*op, 0, s.maxBatch)
	for {
		ops = ops[:0]
		select {
		case o := <-s.ops:
			ops = append(ops, o)
		case <-s.quit:
			// Finish what was queued before Close; later writers see
			// quit and stop.
			for {
				if ops = s.gather(ops[:0]); len(ops) == 0 {
					return
				}
				s.run(ops)
			}
		}
		ops = s.gather(ops)
		s.run(ops)
	}
}

// gather adds whatever else is waiting (and, with Linger, what arrives
// shortly) up to MaxBatch.
func (s *SQLite) gather(ops []*op) []*op {
	for len(ops) < s.maxBatch {
		select {
		case o := <-s.ops:
			ops = append(ops, o)
			continue
		default:
		}
		break
	}
	if s.linger <= 0 || len(ops) >= s.maxBatch {
		return ops
	}
	t := time.NewTimer(s.linger)
	defer t.Stop()
	for len(ops) < s.maxBatch {
		select {
		case o := <-s.ops:
			ops = append(ops, o)
		case <-t.C:
			return ops
		case <-s.quit:
			return ops
		}
	}
	return ops
}

// run commits ops in one transaction and answers each of them.
func (s *SQLite) run(ops []*op) {
	live := ops[:0]
	for _, o := range ops {
		if o.state.CompareAndSwap(opQueued, opTaken) {
			live = append(live, o)
		}
	}
	if len(live) == 0 {
		return
	}
	err := s.commit(live)
	if err != nil && len(live) > 1 && !errors.Is(err, ErrUnavailable) {
		// One op is at fault (say, a duplicate message id): commit the
		// others one by one so it fails alone.
		for _, o := range live {
			o.finish(s.commit([]*op{o}))
		}
		return
	}
	for _, o := range live {
		o.finish(err)
	}
}

// batch is the state of one write transaction.
type batch struct {
	s     *SQLite
	ctx   context.Context
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
	boxes map[string]*boxState // mailboxes changed in this transaction
	dirty map[string]bool      // boxes rows to write before COMMIT
	added []string             // session ids touched

	// Rows that Append queued and writeRows has not inserted yet.
	msgRows   []any
	msgIDs    []string
	entryRows []any
	nextRid   int64

	// What the cache and the ref window learn once the batch commits.
	appended  []appended
	refRows   []any
	refAdds   map[refKey]refRec
	refN      map[string]int64 // each client's newest ref n in this batch
	refTrims  []refTrim
	forget    bool // a Clear or Prune ran: drop the recent cache
	resetRefs bool // a Prune ran: reload the ref windows
}

// writeRows inserts the queued messages and mailbox entries. Ops that read
// or delete mailbox rows call it first.
func (b *batch) writeRows() error {
	if err := b.insertChunks(b.msgRows, msgColumns, qPutMessages); err != nil {
		if isConstraint(err) && len(b.msgIDs) == 1 {
			return fmt.Errorf("a message with id %s is already stored: %w", b.msgIDs[0], err)
		}
		return fmt.Errorf("insert %d messages: %w", len(b.msgIDs), err)
	}
	if err := b.insertChunks(b.entryRows, entryColumns, qPutEntries); err != nil {
		return fmt.Errorf("insert %d mailbox entries: %w", len(b.entryRows)/entryColumns, err)
	}
	if err := b.writeRefs(); err != nil {
		return err
	}
	b.msgRows, b.msgIDs, b.entryRows = b.msgRows[:0], b.msgIDs[:0], b.entryRows[:0]
	return nil
}

func (b *batch) insertChunks(rows []any, cols int, query func(int) string) error {
	for len(rows) > 0 {
		n := len(rows) / cols
		for _, c := range chunkSizes {
			if c <= n {
				n = c
				break
			}
		}
		if _, err := b.exec(query(n), rows[:n*cols]...); err != nil {
			return err
		}
		rows = rows[n*cols:]
	}
	return nil
}

func (b *batch) exec(query string, args ...any) (sql.Result, error) {
	st := b.stmts[query]
	if st == nil {
		// Statements are prepared once on the writer pool and bound to
		// each transaction; SQLite keeps the compiled form per connection.
		if ps := b.s.prepared[query]; ps != nil {
			st = b.tx.StmtContext(b.ctx, ps)
		} else {
			var err error
			if st, err = b.tx.PrepareContext(b.ctx, query); err != nil {
				return nil, err
			}
		}
		b.stmts[query] = st
	}
	return st.ExecContext(b.ctx, args...)
}

// box returns the mailbox as this transaction sees it; ok is false for a
// mailbox that does not exist (and create was not asked).
func (b *batch) box(id string, create bool) (*boxState, bool) {
	if bx := b.boxes[id]; bx != nil {
		return bx, true
	}
	b.s.mu.RLock()
	st, ok := b.s.boxes[id]
	b.s.mu.RUnlock()
	if !ok && !create {
		return nil, false
	}
	bx := &st
	b.boxes[id] = bx
	if !ok {
		b.dirty[id] = true
	}
	return bx, true
}

// flush writes the changed boxes rows.
func (b *batch) flush() error {
	for id := range b.dirty {
		bx := b.boxes[id]
		if _, err := b.exec(qPutBox,
			id, int64(bx.last), int64(bx.acked)); err != nil {
			return fmt.Errorf("update mailbox %s: %w", id, err)
		}
	}
	clear(b.dirty)
	return nil
}

// commit runs ops in one transaction. On success the in-memory cache takes
// the new state; on failure it is left alone (the file did not change) and
// the touched mailboxes are re-read from the file before the next commit,
// in case a failed COMMIT left more on disk than it admitted.
func (s *SQLite) commit(ops []*op) (err error) {
	ctx := context.Background() // the callers' contexts must not cut a batch short
	if err := s.reloadStale(ctx); err != nil {
		return s.writeError(err)
	}
	if s.nextRid == 0 {
		if err := s.r.QueryRowContext(ctx, "SELECT coalesce(max(rid), 0) + 1 FROM messages").Scan(&s.nextRid); err != nil {
			return s.writeError(fmt.Errorf("read the next message key: %w", err))
		}
	}
	b := &s.b
	if b.stmts == nil {
		b.s, b.stmts, b.boxes, b.dirty = s, map[string]*sql.Stmt{}, map[string]*boxState{}, map[string]bool{}
	}
	b.ctx, b.nextRid = ctx, s.nextRid
	clear(b.stmts)
	clear(b.boxes)
	clear(b.dirty)
	b.added, b.msgRows, b.msgIDs, b.entryRows = b.added[:0], b.msgRows[:0], b.msgIDs[:0], b.entryRows[:0]
	b.resetLearned()
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return s.writeError(err)
	}
	defer func() {
		if err != nil && errors.Is(err, ErrUnavailable) {
			// Drop the connection: one opened while the file was
			// read-only stays read-only, and a fresh one picks up a
			// repaired file or disk.
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}()
	defer func() {
		if err != nil {
			for id := range b.boxes {
				s.stale[id] = true
			}
			s.nextRid = 0 // re-read: a failed COMMIT may have written more than it admitted
			if !s.failing {
				s.failing = true
				s.log.Error("message store write failed", logKeyPath, s.path, logKeyBatch, len(ops), logKeyErr, err)
			}
			return
		}
		if s.failing {
			s.failing = false
			s.log.Info("message store writes work again", logKeyPath, s.path)
		}
	}()
	if b.tx, err = conn.BeginTx(ctx, nil); err != nil {
		return s.writeError(err)
	}
	defer b.tx.Rollback()
	if h := s.hookInTx.Load(); h != nil {
		if err := (*h)(b.tx); err != nil {
			return s.writeError(err)
		}
	}
	for _, o := range ops {
		if err := o.apply(b); err != nil {
			if isConstraint(err) {
				return err
			}
			return s.writeError(err)
		}
	}
	if err := b.writeRows(); err != nil {
		if isConstraint(err) {
			return err
		}
		return s.writeError(err)
	}
	if err := b.flush(); err != nil {
		return s.writeError(err)
	}
	if err := b.tx.Commit(); err != nil {
		return s.writeError(err)
	}
	s.nextRid = b.nextRid
	s.learnRefs(b)
	s.mu.Lock()
	for id, bx := range b.boxes {
		s.boxes[id] = *bx
	}
	for _, id := range b.added {
		s.sessions[id] = true
	}
	s.learnRecent(b)
	s.mu.Unlock()
	return nil
}

// reloadStale re-reads the mailboxes a failed commit touched.
func (s *SQLite) reloadStale(ctx context.Context) error {
	if len(s.stale) == 0 {
		return nil
	}
	ids := make([]string, 0, len(s.stale))
	for id := range s.stale {
		ids = append(ids, id)
	}
	boxes, err := s.readBoxes(ctx, ids)
	if err != nil {
		return fmt.Errorf("re-read mailboxes after a failed write: %w", err)
	}
	s.mu.Lock()
	for _, id := range ids {
		if bx, ok := boxes[id]; ok {
			s.boxes[id] = bx
		} else {
			delete(s.boxes, id)
		}
	}
	s.mu.Unlock()
	clear(s.stale)
	return nil
}

// writeError wraps a failed write so that errors.Is(err, ErrUnavailable)
// holds, keeps the cause, and says what the operator can do.
func (s *SQLite) writeError(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	hint := ""
	switch sqliteCode(err) {
	case codeFull:
		hint = " — the disk is full: free some space; relayd retries on the next message"
	case codeReadOnly, codePerm, codeCantOpen:
		hint = " — the file or its directory is not writable: make them writable by the user running relayd (chmod u+w); relayd retries on the next message"
	case codeIOErr:
		hint = " — the disk reported an I/O error: check it (dmesg); relayd retries on the next message"
	case codeCorrupt, codeNotADB:
		hint = " — the file is damaged: stop relayd, move it aside and restore a backup"
	case codeBusy, codeLocked:
		hint = " — another process holds the database lock: stop it (an sqlite3 shell, a backup tool)"
	}
	return fmt.Errorf("%w: write to %s: %w%s", ErrUnavailable, s.path, err, hint)
}

// SQLite primary result codes (https://sqlite.org/rescode.html).
const (
	codePerm     = 3
	codeBusy     = 5
	codeLocked   = 6
	codeReadOnly = 8
	codeIOErr    = 10
	codeCorrupt  = 11
	codeFull     = 13
	codeCantOpen = 14
	codeConstr   = 19
	codeNotADB   = 26
)

// sqliteCode is the primary result code of a driver error, or 0.
func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code() & 0xff // extended codes carry the primary in the low byte
	}
	return 0
}

func isConstraint(err error) bool { return sqliteCode(err) == codeConstr }

// ---- Store ----

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

func (s *SQLite) Touch(ctx context.Context, si SessionInfo) error {
	first := si.FirstSeen
	if first.IsZero() {
		first = si.LastSeen
	}
	err := s.write(ctx, func(b *batch) error {
		_, err := b.exec(qTouch,
			si.ID, si.Host, si.PID, si.Cwd, si.Agent, si.Label, nanos(first), nanos(si.LastSeen))
		if err != nil {
			return fmt.Errorf("record session %s: %w", si.ID, err)
		}
		b.added = append(b.added, si.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("touch session %s: %w", si.ID, err)
	}
	return nil
}

func (s *SQLite) Known(_ context.Context, id string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, box := s.boxes[id]
	return s.sessions[id] || box, nil
}

func (s *SQLite) Sessions(ctx context.Context) ([]SessionInfo, map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT id, host, pid, cwd, agent, label, first_seen, last_seen FROM sessions")
	if err != nil {
		return nil, nil, fmt.Errorf("list sessions in %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []SessionInfo
	seen := map[string]bool{}
	for rows.Next() {
		var si SessionInfo
		var first, last int64
		if err := rows.Scan(&si.ID, &si.Host, &si.PID, &si.Cwd, &si.Agent, &si.Label, &first, &last); err != nil {
			return nil, nil, fmt.Errorf("list sessions in %s: %w", s.path, err)
		}
		si.FirstSeen, si.LastSeen = fromNanos(first), fromNanos(last)
		out = append(out, si)
		seen[si.ID] = true
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("list sessions in %s: %w", s.path, err)
	}
	queued := map[string]int{}
	s.mu.RLock()
	for id, bx := range s.boxes {
		queued[id] = bx.unacked
		if !seen[id] {
			// Mail queued for an id that never connected.
			out = append(out, SessionInfo{ID: id})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b SessionInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, queued, nil
}

// Append submits msg and waits for its commit.
func (s *SQLite) Append(ctx context.Context, msg Message, recipients []string, maxQueue int) ([]Slot, error) {
	return AppendWait(ctx, s, msg, recipients, maxQueue)
}

// Submit implements Store. The seqs are assigned here, under submitMu, in
// the order the ops reach the committer; the deliveries join the recent
// cache at once, so that provisional readers have them while the commit
// runs. A send the sender's durable ref window already holds is answered
// as a duplicate without touching a mailbox.
func (s *SQLite) Submit(msg Message, recipients []string, maxQueue int, ref *SendRef, done func(Submitted)) ([]Slot, bool) {
	a, err := s.newAppend(msg, recipients, maxQueue, ref)
	if err != nil {
		done(Submitted{Err: err})
		return nil, false
	}
	if ref != nil {
		dup, err := s.sentBefore(msg.From, ref)
		if err != nil {
			done(Submitted{Err: fmt.Errorf("store message %s: %w", msg.ID, s.writeError(err))})
			return nil, false
		}
		if dup != nil {
			done(Submitted{Dup: dup})
			return nil, false
		}
	}
	s.submitMu.Lock()
	defer s.submitMu.Unlock()
	select {
	case <-s.quit:
		done(Submitted{Err: fmt.Errorf("store message %s: %w", msg.ID, s.closedError())})
		return nil, false
	default:
	}
	s.mu.Lock()
	for i, id := range recipients {
		bx := s.boxes[id]
		last := max(s.assigned[id], bx.last)
		if maxQueue > 0 && bx.unacked+int(last-bx.last) >= maxQueue {
			a.slots[i] = Slot{Full: true}
			continue
		}
		s.assigned[id] = last + 1
		a.slots[i] = Slot{Seq: last + 1}
	}
	a.early = true
	s.publishEarly(a)
	s.mu.Unlock()
	slots := a.slots
	s.writeAsync(a.apply, func(err error) {
		r := Submitted{Slots: slots, Early: true, Err: err, Dup: a.dup}
		if err != nil || a.dup != nil {
			// The provisional deliveries were never committed. A seq
			// with nothing submitted after it is given again (no gap
			// after a lone failed send); one followed by others stays
			// a gap, since a reader may have moved past it.
			s.mu.Lock()
			for i, id := range recipients {
				s.dropRecent(id)
				if seq := slots[i].Seq; seq > 0 && s.assigned[id] == seq {
					s.assigned[id] = s.boxes[id].last
				}
			}
			s.mu.Unlock()
		}
		if err != nil {
			r.Err = fmt.Errorf("store message %s: %w", msg.ID, err)
		}
		done(r)
	})
	return slots, true
}

// pendingAppend is one Append on its way to the committer.
type pendingAppend struct {
	msg        *Message
	to         string // msg.To as JSON
	ts         int64
	recipients []string
	maxQueue   int
	ref        *SendRef
	slots      []Slot // assigned by Submit
	dup        *Sent
	early      bool // in the recent cache since Submit
}

func (s *SQLite) newAppend(msg Message, recipients []string, maxQueue int, ref *SendRef) (*pendingAppend, error) {
	// Encode outside the committer so that work runs on the callers'
	// goroutines, in parallel.
	tob, err := json.Marshal(msg.To)
	if err != nil {
		return nil, fmt.Errorf("encode recipients of message %s: %w", msg.ID, err)
	}
	to := string(tob)
	if msg.To == nil {
		to = "[]"
	}
	return &pendingAppend{msg: &msg, to: to, ts: nanos(msg.TS), recipients: recipients, maxQueue: maxQueue,
		ref: ref, slots: make([]Slot, len(recipients))}, nil
}

// apply runs in the committer. It may run twice (see op), so it sets every
// result it returns.
func (a *pendingAppend) apply(b *batch) error {
	a.dup = nil
	if a.ref != nil {
		dup, err := b.findRef(a.msg.From, a.ref)
		if err != nil {
			return err
		}
		if dup != nil {
			a.dup = dup
			return nil
		}
	}
	msg := a.msg
	rid := b.nextRid
	b.nextRid++
	b.msgRows = append(b.msgRows, rid, msg.ID, msg.From, a.to, msg.Body, a.ts, msg.ReplyTo, msg.Thread)
	b.msgIDs = append(b.msgIDs, msg.ID)
	for i, id := range a.recipients {
		seq := a.slots[i].Seq
		if seq == 0 {
			continue // full
		}
		bx, _ := b.box(id, true)
		b.entryRows = append(b.entryRows, id, int64(seq), rid)
		// Not dirty: the entry itself records the new last seq.
		bx.last, bx.unacked = max(bx.last, seq), bx.unacked+1
	}
	b.appended = append(b.appended, appended{msg: msg, recipients: a.recipients, slots: a.slots, early: a.early})
	if a.ref != nil {
		b.addRef(msg, a.ref, a.recipients, a.slots)
	}
	return nil
}

const deliveryColumns = "g.id, g.sender, g.recipients, g.body, g.ts, g.reply_to, g.thread"

func scanMessage(sc interface{ Scan(...any) error }, extra ...any) (Message, error) {
	var m Message
	var to string
	var ts int64
	dst := append(extra, &m.ID, &m.From, &to, &m.Body, &ts, &m.ReplyTo, &m.Thread)
	if err := sc.Scan(dst...); err != nil {
		return m, err
	}
	var err error
	if m.To, err = decodeRecipients(to); err != nil {
		return m, fmt.Errorf("decode recipients of message %s: %w", m.ID, err)
	}
	m.TS = fromNanos(ts)
	return m, nil
}

func (s *SQLite) Pending(ctx context.Context, id string, after uint64, limit int, provisional bool) ([]Delivery, error) {
	if ds, ok := s.pendingFromRecent(id, after, limit, provisional); ok {
		return ds, nil
	}
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.r.QueryContext(ctx, `SELECT m.seq, `+deliveryColumns+`
		FROM mailbox m JOIN messages g ON g.rid = m.msg
		WHERE m.recipient = ?1
		  AND m.seq > max(?2, coalesce((SELECT acked FROM boxes WHERE recipient = ?1), 0))
		ORDER BY m.seq LIMIT ?3`, id, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("read mailbox %s in %s: %w", id, s.path, err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var seq int64
		m, err := scanMessage(rows, &seq)
		if err != nil {
			return nil, fmt.Errorf("read mailbox %s in %s: %w", id, s.path, err)
		}
		out = append(out, Delivery{Seq: uint64(seq), Msg: m})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read mailbox %s in %s: %w", id, s.path, err)
	}
	return out, nil
}

func (s *SQLite) Ack(ctx context.Context, id string, upto uint64) error {
	s.mu.RLock()
	bx := s.boxes[id]
	top := max(bx.last, s.assigned[id])
	s.mu.RUnlock()
	// A client only knows seqs that were assigned, so an ack at or below
	// the cached one changes nothing: skip the write. An ack of a seq on
	// its way to the committer is queued behind it, and the committer
	// clamps it to what is committed.
	if min(upto, top) <= bx.acked {
		return nil
	}
	err := s.write(ctx, func(b *batch) error {
		// Earlier appends of this batch must be in the table first.
		if err := b.writeRows(); err != nil {
			return err
		}
		bx, ok := b.box(id, false)
		if !ok {
			return nil
		}
		to := max(bx.acked, min(upto, bx.last))
		if to == bx.acked {
			return nil
		}
		if err := stampDelivered(b, id, bx.acked, to); err != nil {
			return err
		}
		var n int
		if err := b.tx.QueryRowContext(b.ctx, "SELECT count(*) FROM mailbox WHERE recipient = ? AND seq > ? AND seq <= ?",
			id, int64(bx.acked), int64(to)).Scan(&n); err != nil {
			return fmt.Errorf("count acked messages of %s: %w", id, err)
		}
		bx.acked, bx.unacked = to, bx.unacked-n
		b.dirty[id] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("ack %s up to %d: %w", id, upto, err)
	}
	return nil
}

func (s *SQLite) LastSeq(_ context.Context, id string) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.boxes[id].last, nil
}

func (s *SQLite) Unacked(_ context.Context, id string) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.boxes[id].unacked, nil
}

func (s *SQLite) Clear(ctx context.Context, id string, includeUnread bool) (int, error) {
	var n int
	err := s.write(ctx, func(b *batch) error {
		// Earlier appends of this batch must be in the table first.
		if err := b.writeRows(); err != nil {
			return err
		}
		n = 0
		b.forget = true
		var removed []int64
		if bx, ok := b.box(id, false); ok {
			// Record the last seq in boxes before its entry may go.
			b.dirty[id] = true
			q := "DELETE FROM mailbox WHERE recipient = ? AND seq <= ? RETURNING msg"
			upto := bx.acked
			if includeUnread {
				upto = bx.last
			}
			rows, err := b.tx.QueryContext(b.ctx, q, id, int64(upto))
			if err != nil {
				return fmt.Errorf("clear mailbox %s: %w", id, err)
			}
			for rows.Next() {
				var rid int64
				if err := rows.Scan(&rid); err != nil {
					rows.Close()
					return fmt.Errorf("clear mailbox %s: %w", id, err)
				}
				removed = append(removed, rid)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return fmt.Errorf("clear mailbox %s: %w", id, err)
			}
			n += len(removed)
			if includeUnread {
				bx.acked, bx.unacked = bx.last, 0
			}
		}
		res, err := b.exec("UPDATE messages SET sender_cleared = 1 WHERE sender = ? AND sender_cleared = 0", id)
		if err != nil {
			return fmt.Errorf("clear messages sent by %s: %w", id, err)
		}
		sent, _ := res.RowsAffected()
		n += int(sent)
		// Messages nobody can see any more go for good: the sender
		// cleared them and no mailbox holds them.
		js, _ := json.Marshal(removed)
		if _, err := b.exec(`DELETE FROM messages
			WHERE (sender = ?1 OR rid IN (SELECT value FROM json_each(?2)))
			  AND sender_cleared = 1
			  AND NOT EXISTS (SELECT 1 FROM mailbox WHERE msg = messages.rid)`, id, string(js)); err != nil {
			return fmt.Errorf("delete messages cleared by %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("clear history of %s: %w", id, err)
	}
	return n, nil
}

func (s *SQLite) Prune(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		n, done, err := s.pruneOnce(ctx, nanos(before))
		total += n
		if err != nil {
			return total, fmt.Errorf("prune messages older than %s (%d mailbox entries dropped so far): %w", before.Format(time.RFC3339), total, err)
		}
		if done {
			return total, nil
		}
	}
}

// pruneOnce deletes up to s.pruneChunk of the oldest messages older than cut
// and their mailbox entries; done reports that none are left.
func (s *SQLite) pruneOnce(ctx context.Context, cut int64) (n int, done bool, err error) {
	err = s.write(ctx, func(b *batch) error {
		n, done = 0, false
		// Earlier appends of this batch must be in the tables, and its
		// acks in boxes (the counts below read them), first.
		if err := b.writeRows(); err != nil {
			return err
		}
		if err := b.flush(); err != nil {
			return err
		}
		var rids []int64
		rows, err := b.tx.QueryContext(b.ctx, "SELECT rid FROM messages WHERE ts < ? ORDER BY ts LIMIT ?", cut, s.pruneChunk)
		if err != nil {
			return fmt.Errorf("find expired messages: %w", err)
		}
		for rows.Next() {
			var rid int64
			if err := rows.Scan(&rid); err != nil {
				rows.Close()
				return fmt.Errorf("find expired messages: %w", err)
			}
			rids = append(rids, rid)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("find expired messages: %w", err)
		}
		done = len(rids) < s.pruneChunk
		if done {
			// Refs of expired messages answer retries nobody will send.
			if _, err := b.tx.ExecContext(b.ctx, "DELETE FROM refs WHERE ts < ?", cut); err != nil {
				return fmt.Errorf("delete expired send refs: %w", err)
			}
			b.resetRefs = true
		}
		if len(rids) == 0 {
			return nil
		}
		b.forget = true
		js, _ := json.Marshal(rids)
		// Record every mailbox's last seq before its newest entry may go.
		if _, err := b.tx.ExecContext(b.ctx, `UPDATE boxes SET last_seq = max(last_seq,
			coalesce((SELECT max(seq) FROM mailbox WHERE recipient = boxes.recipient), 0))`); err != nil {
			return fmt.Errorf("record last seqs: %w", err)
		}
		rows, err = b.tx.QueryContext(b.ctx, `SELECT m.recipient, count(*)
			FROM mailbox m JOIN boxes x ON x.recipient = m.recipient
			WHERE m.msg IN (SELECT value FROM json_each(?)) AND m.seq > x.acked GROUP BY m.recipient`, string(js))
		if err != nil {
			return fmt.Errorf("count expired unread messages: %w", err)
		}
		lost := map[string]int{}
		for rows.Next() {
			var id string
			var c int
			if err := rows.Scan(&id, &c); err != nil {
				rows.Close()
				return fmt.Errorf("count expired unread messages: %w", err)
			}
			lost[id] = c
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("count expired unread messages: %w", err)
		}
		res, err := b.tx.ExecContext(b.ctx, "DELETE FROM mailbox WHERE msg IN (SELECT value FROM json_each(?))", string(js))
		if err != nil {
			return fmt.Errorf("delete expired mailbox entries: %w", err)
		}
		d, _ := res.RowsAffected()
		n = int(d)
		if _, err := b.tx.ExecContext(b.ctx, "DELETE FROM messages WHERE rid IN (SELECT value FROM json_each(?))", string(js)); err != nil {
			return fmt.Errorf("delete expired messages: %w", err)
		}
		for id, c := range lost {
			if bx, ok := b.box(id, false); ok {
				bx.unacked -= c
			}
		}
		return nil
	})
	return n, done, err
}

var _ Store = (*SQLite)(nil)
