package store

import (
	"errors"
	"fmt"

	sqlite "modernc.org/sqlite"
)

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

// writeError wraps a failed write so that errors.Is(err, ErrUnavailable)
// holds, keeps the cause, and says what the operator can do.
func (s *SQLite) writeError(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	hint := ""
	switch sqliteCode(err) {
	case codeFull:
		hint = hintDiskFull
	case codeReadOnly, codePerm, codeCantOpen:
		hint = hintNotWritable
	case codeIOErr:
		hint = hintIOError
	case codeCorrupt, codeNotADB:
		hint = " — the file is damaged: stop relayd, move it aside and restore a backup"
	case codeBusy, codeLocked:
		hint = " — another process holds the database lock: stop it (an sqlite3 shell, a backup tool)"
	}
	return unavailable(s.path, err, hint)
}

// What the operator can do about a failed write, for both durable stores.
const (
	hintDiskFull    = " — the disk is full: free some space; relayd retries on the next message"
	hintNotWritable = " — the file or its directory is not writable: make them writable by the user running relayd (chmod u+w); relayd retries on the next message"
	hintIOError     = " — the disk reported an I/O error: check it (dmesg); relayd retries on the next message"
)

// unavailable wraps a failed write of path so that errors.Is(err,
// ErrUnavailable) holds, keeps the cause, and ends with hint.
func unavailable(path string, err error, hint string) error {
	return fmt.Errorf("%w: write to %s: %w%s", ErrUnavailable, path, err, hint)
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
