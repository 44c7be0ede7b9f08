package store

import (
	"fmt"
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/protocol"
)

// A history page holds at most protocol.MaxHistoryBytes of bodies, whatever
// limit was asked for, and paging by its cursors still walks every message
// once: 1 000 messages of 1 MiB in one page were a gigabyte in one frame.
func TestHistoryPageBytes(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			s := k.open(t)
			var want []string
			for i := range 14 {
				m := newMsg("a", "b")
				if i%2 == 1 {
					m.From, m.To = "b", []string{"a"}
				}
				m.Thread = "big"
				m.Body = fmt.Sprintf("%03d", i) + strings.Repeat("x", 700<<10)
				send(t, s, m)
				want = append(want, m.Body[:3])
			}
			for _, q := range []HistoryQuery{{Client: "b"}, {Client: "b", Thread: "big"}, {Client: "a", With: "b"}} {
				q.Limit = protocol.MaxHistoryLimit
				var got []string
				for range 20 {
					page, more := history(t, s, q)
					size := 0
					for _, m := range page {
						size += len(m.Body)
					}
					if size > protocol.MaxHistoryBytes || len(page) == 0 {
						t.Fatalf("%+v: a page of %d messages, %d bytes", q, len(page), size)
					}
					var heads []string
					for _, m := range page {
						heads = append(heads, m.Body[:3])
					}
					got = append(heads, got...)
					if !more {
						break
					}
					q.Before = page[0].ID
				}
				eq(t, fmt.Sprintf("paged back %+v", q), got, want)
			}
			// Forward from the first message.
			first, _ := history(t, s, HistoryQuery{Client: "b", Limit: 1, After: "0"})
			q := HistoryQuery{Client: "b", Limit: protocol.MaxHistoryLimit, After: first[0].ID}
			got := []string{first[0].Body[:3]}
			for range 20 {
				page, more := history(t, s, q)
				for _, m := range page {
					got = append(got, m.Body[:3])
				}
				if !more {
					break
				}
				q.After = page[len(page)-1].ID
			}
			eq(t, "paged forward", got, want)
		})
	}
}
