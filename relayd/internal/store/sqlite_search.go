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
// The index is not written on the send path: Search indexes the messages
// stored since it last looked before it looks (indexQueued). Writing FTS5
// in every commit halved the store's send rate (BenchmarkAppend, sqlite:
// ~10 000 → ~4 500 msgs/s for one writer), since each small commit made an
// index segment of its own; a search catching up indexes hundreds of
// messages per segment instead. Deleting a message (Prune, Clear) drops it
// from the index when it was indexed (a trigger, so every writer of
// messages is covered without knowing of it).
//
// What is indexed is every message up to search_state.indexed (schema step
// 8): rids only grow, so the messages stored since are the rids past it.
// Steps 5 to 7 queued each new rid in search_todo instead, by a trigger on
// every insert: one more b-tree written per message.
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

// migrationSearchState replaces the search queue by its watermark. The
// queue only ever held the rids past the last indexed one (Search indexes
// the smallest first), so the watermark is just below the smallest queued.
const migrationSearchState = `
DROP TRIGGER messages_search_insert;
DROP TRIGGER messages_search_delete;
CREATE TABLE search_state (indexed INTEGER NOT NULL); -- one row: messages with rid <= indexed are in messages_fts
INSERT INTO search_state(indexed) VALUES (
	coalesce((SELECT min(rid) - 1 FROM search_todo), (SELECT max(rid) FROM messages), 0));
DROP TABLE search_todo;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
	INSERT INTO messages_fts(messages_fts, rowid, body)
		SELECT 'delete', old.rid, old.body WHERE old.rid <= (SELECT indexed FROM search_state);
END;
`

// indexChunk is how many queued messages one write indexes: a few
// milliseconds of the committer's time, so sends queued behind it wait
// little.
const indexChunk = 2000

// indexQueued indexes every message stored past the watermark, a chunk
// per write. An indexing error never fails the writes it shares a
// transaction with (the op swallows it and Search reports it).
func (s *SQLite) indexQueued(ctx context.Context) error {
	for {
		var n int64
		var ierr error
		err := s.write(ctx, func(b *batch) error {
			n, ierr = 0, nil
			// Rows of sends earlier in this batch are written first, so
			// that they are indexed too.
			if err := b.writeRows(); err != nil {
				return err
			}
			var from, to int64
			err := b.tx.QueryRowContext(b.ctx, "SELECT indexed FROM search_state").Scan(&from)
			if err == nil {
				err = b.tx.QueryRowContext(b.ctx, "SELECT coalesce(max(rid), ?1) FROM (SELECT rid FROM messages WHERE rid > ?1 ORDER BY rid LIMIT ?2)",
					from, indexChunk).Scan(&to)
			}
			if err != nil {
				ierr = err
				return nil
			}
			if to == from {
				return nil
			}
			if _, err := b.exec("SAVEPOINT search"); err != nil {
				ierr = err
				return nil
			}
			_, err = b.exec(`INSERT INTO messages_fts(rowid, body) SELECT rid, body FROM messages WHERE rid > ? AND rid <= ?`, from, to)
			if err == nil {
				_, err = b.exec("UPDATE search_state SET indexed = ?", to)
			}
			if err != nil {
				ierr = err
				b.exec("ROLLBACK TO search")
			} else {
				n = to - from
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
	msgs, more, err := newestPage(rows, limit)
	if err != nil {
		return nil, false, fmt.Errorf("search %s: %w", s.path, err)
	}
	return msgs, more, nil
}
