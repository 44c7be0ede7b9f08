//go:build ignore

// modproxy writes a module into a GOPROXY=file://DIR tree, as a module
// proxy serves a tagged release: DIR/MODULE/@v/{list,VERSION.info,.mod,.zip}.
// The zip follows `go mod download`'s layout (golang.org/x/mod/zip): every
// file under MODULE@VERSION/, without .git, vendor/ or nested modules.
// Standard library only, so it runs anywhere with `go run`.
//
//	go run scripts/modproxy.go DIR MODULE_DIR VERSION
package main

import (
	"archive/zip"
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: go run scripts/modproxy.go PROXY_DIR MODULE_DIR VERSION")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, "modproxy:", err)
		os.Exit(1)
	}
}

func modulePath(gomod []byte) (string, error) {
	sc := bufio.NewScanner(strings.NewReader(string(gomod)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`), nil
		}
	}
	return "", fmt.Errorf("no module line")
}

// escape is the proxy's case encoding: an upper-case letter becomes ! and
// its lower case.
func escape(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func run(proxy, dir, version string) error {
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	mod, err := modulePath(gomod)
	if err != nil {
		return fmt.Errorf("%s/go.mod: %w", dir, err)
	}
	vdir := filepath.Join(proxy, filepath.FromSlash(escape(mod)), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(vdir, version+".mod"), gomod, 0o644); err != nil {
		return err
	}
	info := fmt.Sprintf(`{"Version":%q,"Time":%q}`+"\n", version, time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(vdir, version+".info"), []byte(info), 0o644); err != nil {
		return err
	}
	if err := writeZip(filepath.Join(vdir, version+".zip"), dir, mod+"@"+version); err != nil {
		return err
	}
	list, _ := os.ReadFile(filepath.Join(vdir, "list"))
	for _, v := range strings.Fields(string(list)) {
		if v == version {
			return nil
		}
	}
	return os.WriteFile(filepath.Join(vdir, "list"), append(list, []byte(version+"\n")...), 0o644)
}

func writeZip(path, dir, prefix string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if rel != "." {
				switch d.Name() {
				case ".git", ".hg", ".svn", ".bzr", "vendor", "node_modules":
					return filepath.SkipDir
				}
				if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
					return filepath.SkipDir // a nested module is not part of this one
				}
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // symlinks and the like are left out, as x/mod/zip does
		}
		w, err := zw.Create(prefix + "/" + filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(w, src)
		return err
	})
	if err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
