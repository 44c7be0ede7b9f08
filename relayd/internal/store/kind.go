package store

import (
	"os"
	"path/filepath"
)

// DurableKind names the durable store whose file dir holds: "sqlite" where
// relay.db is, "journal" where relay.journal is (both: "sqlite", whose open
// then refuses the directory and says why), "" where neither is — a new
// data directory, or one that does not exist yet. relayd's --store auto
// reads it, so an upgrade keeps the store a directory already has.
func DurableKind(dir string) string {
	switch {
	case fileExists(filepath.Join(dir, FileName)):
		return "sqlite"
	case fileExists(filepath.Join(dir, JournalFile)):
		return "journal"
	}
	return ""
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
