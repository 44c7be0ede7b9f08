package atomicfile

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Write replaces the file whole with the permission asked for and leaves
// nothing else in the folder.
func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := os.WriteFile(path, []byte("old, and longer than the new content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "new" {
		t.Fatalf("after Write: %q, %v; want new", b, err)
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("folder holds %d entries after Write, want only the file", len(es))
	}
}

// A Write that cannot finish leaves the old file as it was.
func TestWriteFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "missing", "state.json"), []byte("new"), 0o600); err == nil {
		t.Fatal("Write into a missing folder returned no error")
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A folder in the way: the rename fails after the temporary file was written.
	if err := Write(filepath.Join(dir, "sub"), []byte("new"), 0o600); err == nil {
		t.Fatal("Write over a folder returned no error")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("file after failed Writes: %q, want old", b)
	}
	if es, _ := os.ReadDir(dir); len(es) != 2 {
		t.Errorf("folder holds %d entries, want the file and sub only (no temporary file left)", len(es))
	}
}
