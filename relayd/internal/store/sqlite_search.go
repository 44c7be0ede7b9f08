package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// migrationSearch is the schema step of the full-text index over message
// bodies: an FTS5 table with external content (it keeps only the index; the
// bodies stay in messages, keyed by rid). The last statements index the
// messages already stored.
//
// The index is not written on the send path: a message's insert only
// queues its rid in search_todo (a trigger, so every writer of messages is
// covered without knowing of it), and Search indexes what is queued before
// it looks (indexQueued). Writing FTS5 in every commit halved the store's
// send rate (BenchmarkAppend, sqlite: ~10 000 → ~4 500 msgs/s for one
// writer), since each small commit made an index segment of its own; a
// search catching up indexes hundreds of messages per segment instead.
// Deleting a message (Prune, Clear) drops it from the index, or from the
// queue when it was never indexed.
//
// Tokenizer: unicode61 with diacritics removed, so "resume" finds "résumé"
// and case never matters; searchQuery asks for word prefixes.
const migrationSearch = `
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
	body, content='messages', content_rowid='rid', tokenize='unicode61 remove_diacritics 2');
CREATE TABLE IF NOT EXISTS search_todo (rid INTEGER PRIMARY KEY);
CREATE TRIGGER IF NOT EXISTS messages_search_insert AFTER INSERT ON messages BEGIN
	INSERT OR IGNORE INTO search_todo(rid) VALUES (new.rid);
END;
CREATE TRIGGER IF NOT EXISTS messages_search_delete AFTER DELETE ON messages BEGIN
	INSERT INTO messages_fts(messages_fts, rowid, body)
		SELECT 'delete', old.rid, old.body WHERE NOT EXISTS (SELECT 1 FROM search_todo WHERE rid = old.rid);
	DELETE FROM search_todo WHERE rid = old.rid;
END;
DELETE FROM search_todo;
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
`

// indexChunk is how many queued messages one write indexes: a few
// milliseconds of the committer's time, so sends queued behind it wait
// little.
const indexChunk = 2000

// indexQueued indexes every message queued in search_todo, a chunk per
// write. An indexing error never fails the writes it shares a transaction
// with (the op swallows it and Search reports it).
func (s *SQLite) indexQueued(ctx context.Context) error {
	const pick = `(SELECT rid FROM search_todo ORDER BY rid LIMIT ?)`
	for {
		var n int64
		var ierr error
		err := s.write(ctx, func(b *batch) error {
			n, ierr = 0, nil
			// Rows of sends earlier in this batch are written first, so
			// that they are queued (and indexed) too.
			if err := b.writeRows(); err != nil {
				return err
			}
			if _, err := b.exec("SAVEPOINT search"); err != nil {
				ierr = err
				return nil
			}
			if _, err := b.exec(`INSERT INTO messages_fts(rowid, body) SELECT rid, body FROM messages WHERE rid IN `+pick, indexChunk); err != nil {
				ierr = err
				b.exec("ROLLBACK TO search")
				b.exec("RELEASE search")
				return nil
			}
			res, err := b.exec(`DELETE FROM search_todo WHERE rid IN `+pick, indexChunk)
			if err == nil {
				n, err = res.RowsAffected()
			}
			if err != nil {
				ierr = err
				b.exec("ROLLBACK TO search")
			}
			b.exec("RELEASE search")
			return nil
		})
		if err = errors.Join(err, ierr); err != nil {
			return fmt.Errorf("index new messages for search in %s: %w", s.path, err)
		}
		if n < indexChunk {
			return nil
		}
	}
}

// searchQuery turns an operator's words into an FTS5 query: each word a
// quoted prefix ("migrat"*), all of them required. Quoting makes every
// input a valid query (no FTS5 operator or column filter can be typed).
func searchQuery(text string) string {
	words := searchWords(text)
	for i, w := range words {
		words[i] = `"` + w + `"*`
	}
	return strings.Join(words, " AND ")
}

// Search indexes what was stored since the last search, then walks the
// index newest first (rowid is messages.rid, the storage
// order) and joins the rows it matched.
func (s *SQLite) Search(ctx context.Context, q SearchQuery) ([]Message, bool, error) {
	match := searchQuery(q.Text)
	if match == "" {
		return nil, false, nil
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	if err := s.indexQueued(ctx); err != nil {
		return nil, false, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM messages_fts f JOIN messages g ON g.rid = f.rowid
		WHERE messages_fts MATCH ?1 AND (?2 = '' OR g.id < ?2)
		ORDER BY f.rowid DESC LIMIT ?3`, match, q.Before, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("search %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, false, fmt.Errorf("search %s: %w", s.path, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("search %s: %w", s.path, err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	reverse(out)
	return out, more, nil
}
