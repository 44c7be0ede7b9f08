package install

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/claude-relay/claude-relay/internal/atomicfile"
)

// Result says what UpdateFile did.
type Result struct {
	Path    string
	Changed bool   // false: the file already said this; nothing written
	Created bool   // the file did not exist
	Backup  string // the previous contents, when there were any
}

// UpdateFile rewrites path with edit(old contents). A missing file is
// empty input. When edit returns the same bytes nothing is written; else
// the old file is copied to path.bak-YYYYMMDD-HHMMSS first, and the new
// contents replace it atomically (temp file + rename, same mode). An edit
// error leaves the file untouched.
func UpdateFile(path string, now time.Time, edit func(old []byte) ([]byte, error)) (Result, error) {
	r := Result{Path: path}
	// Edit the file a symlink points to (a dotfiles checkout), not the link.
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	old, err := os.ReadFile(path)
	mode := fs.FileMode(0o600)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.Created = true
	case err != nil:
		return r, err
	default:
		if fi, err := os.Stat(path); err == nil {
			mode = fi.Mode().Perm()
		}
	}
	data, err := edit(old)
	if err != nil {
		return r, err
	}
	if !r.Created && bytes.Equal(old, data) {
		return r, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return r, err
	}
	if !r.Created {
		r.Backup = path + ".bak-" + now.Format("20060102-150405")
		for i := 1; exists(r.Backup); i++ {
			r.Backup = fmt.Sprintf("%s.bak-%s-%d", path, now.Format("20060102-150405"), i)
		}
		if err := os.WriteFile(r.Backup, old, mode); err != nil {
			return r, fmt.Errorf("write backup: %w", err)
		}
	}
	if err := atomicfile.Write(path, data, mode); err != nil {
		return r, err
	}
	r.Changed = true
	return r, nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
