package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/claude-relay/claude-relay/relayd/internal/store"
)

// StoreDefaultMB as Config.MaxStoreMB bounds the store by its own default:
// sqliteMaxStoreMB or journalMaxStoreMB.
const StoreDefaultMB = -1

// sqliteMaxStoreMB bounds the SQLite store: far above a team's mail kept
// for the retention period, far below a disk. journalMaxStoreMB bounds the
// journal store, which holds what it keeps in memory as well: about 4.5
// bytes of RAM per byte of journal for short messages, so 512 MiB of
// journal (1.7 million short messages) is some 2.3 GB of RSS
// (docs/operations.md, "The journal store").
const (
	sqliteMaxStoreMB  = 4096
	journalMaxStoreMB = 512
)

// maxStoreMB is the --max-store-mb a store of kind serves with.
func maxStoreMB(kind string, mb int) int {
	if mb != StoreDefaultMB {
		return mb
	}
	if kind == "journal" {
		return journalMaxStoreMB
	}
	return sqliteMaxStoreMB
}

// storeSizeEvery is how often the store's size is measured.
const storeSizeEvery = time.Second

// watchStoreSize measures the data st holds every storeSizeEvery and
// returns the hub's StoreFull: a reason while it is at maxMB or more, else
// "". A store that keeps nothing on disk (memory) measures 0: never full.
func watchStoreSize(ctx context.Context, st store.Store, maxMB int, log *slog.Logger) (full func() string, stop func()) {
	if maxMB <= 0 {
		return nil, func() {}
	}
	limit := int64(maxMB) << 20
	var used atomic.Int64
	measure := func() {
		n, err := st.UsedBytes(ctx)
		if err != nil {
			return // a store that cannot be read says so on its own
		}
		if was := used.Swap(n); (was >= limit) != (n >= limit) {
			if n >= limit {
				log.Warn("store full: refusing sends until room is freed", "used_mb", n>>20, "max_store_mb", maxMB)
			} else {
				log.Info("store has room again", "used_mb", n>>20, "max_store_mb", maxMB)
			}
		}
	}
	measure()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(storeSizeEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				measure()
			}
		}
	}()
	full = func() string {
		n := used.Load()
		if n < limit {
			return ""
		}
		return fmt.Sprintf("not stored: the relay's store is full (%d MiB of its --max-store-mb %d); nothing was sent — mail must be read and expire (retention) or be cleared first, or the relay's operator must raise the limit", n>>20, maxMB)
	}
	return full, func() { cancel(); <-done }
}
