package store

import (
	"context"
	"fmt"
)

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
	// 5: full-text search of bodies for the console (sqlite_search.go).
	migrationSearch,
	// 6: the operator's holds, so that a restart keeps them (sqlite_holds.go).
	migrationHolds,
	// 7: a send's ref in its message's row instead of the refs table
	// (sqlite_refs.go).
	migrationRefsInMessages,
	// 8: one b-tree less per message twice over: the search queue becomes a
	// watermark (sqlite_search.go), and messages_by_ts goes (Prune walks
	// the table in rid order, sqlite_prune.go).
	migrationSearchState + "DROP INDEX messages_by_ts;",
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
