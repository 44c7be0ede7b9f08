// Package service runs relayd (and an SSH tunnel to a remote relayd) under
// the user's service manager: a systemd user unit on Linux, a LaunchAgent on
// macOS. The unit files are rendered from the templates embedded here; the
// copies in the repository's deploy/ folder are the same templates rendered
// with example values (a test keeps them identical), so what people read
// there is what `relayd service install` writes.
package service

import (
	"bytes"
	"embed"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"text/template"
)

//go:embed templates
var files embed.FS

// Names of what gets installed.
const (
	Unit        = "relayd.service"          // systemd user unit
	TunnelUnit  = "relay-tunnel@.service"   // systemd template unit, instance = SSH destination
	Label       = "com.claude-relay.relayd" // launchd label; the plist is Label + ".plist"
	TunnelLabel = "com.claude-relay.tunnel"
)

// Spec is the command a service runs.
type Spec struct {
	// Binary is the absolute path of relayd.
	Binary string
	// Args are relayd's flags (--listen, --data-dir …).
	Args []string
}

// Argv is Binary followed by Args.
func (s Spec) Argv() []string { return append([]string{s.Binary}, s.Args...) }

var tmpl = template.Must(template.New("").Funcs(template.FuncMap{"xml": xmlEscape}).ParseFS(files, "templates/*"))

func render(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := tmpl.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// SystemdUnit renders relayd.service running spec.
func SystemdUnit(spec Spec) ([]byte, error) {
	return render(Unit, struct{ ExecStart string }{systemdExec(spec.Argv())})
}

// systemdUnitRaw renders relayd.service with ExecStart as given, for the
// deploy/ copy whose binary path uses a systemd specifier (%h).
func systemdUnitRaw(execStart string) ([]byte, error) {
	return render(Unit, struct{ ExecStart string }{execStart})
}

// TunnelSystemdUnit renders relay-tunnel@.service; the SSH destination is
// the instance name, so the file itself takes no values.
func TunnelSystemdUnit() ([]byte, error) { return render(TunnelUnit, nil) }

// LaunchdPlist renders the LaunchAgent running spec, logging to logDir.
func LaunchdPlist(spec Spec, logDir string) ([]byte, error) {
	return render(Label+".plist", struct {
		Argv   []string
		LogDir string
	}{spec.Argv(), logDir})
}

// TunnelPlist renders the LaunchAgent of an SSH tunnel to host forwarding
// local port to the relay's loopback port.
func TunnelPlist(host string, port int, logDir string) ([]byte, error) {
	return render(TunnelLabel+".plist", struct {
		Host   string
		Port   int
		LogDir string
	}{host, port, logDir})
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// systemdExec quotes argv for ExecStart: systemd splits on whitespace,
// understands double quotes with C escapes, and expands % specifiers and $
// variables, which a literal path or flag must not trigger.
func systemdExec(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		a = strings.ReplaceAll(a, "%", "%%")
		a = strings.ReplaceAll(a, "$", "$$")
		if a == "" || strings.ContainsAny(a, " \t\"'\\;") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// SplitSystemdExec undoes systemdExec for the command of an installed unit's
// ExecStart= line, so status can tell where the service listens.
func SplitSystemdExec(line string) []string {
	var argv []string
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimLeft(line, " \t") {
		var word string
		if line[0] == '"' {
			end := 1
			for end < len(line) && line[end] != '"' {
				if line[end] == '\\' {
					end++
				}
				end++
			}
			end = min(end+1, len(line))
			if w, err := strconv.Unquote(line[:end]); err == nil {
				word = w
			} else {
				word = line[1:end]
			}
			line = line[end:]
		} else {
			end := strings.IndexAny(line, " \t")
			if end < 0 {
				end = len(line)
			}
			word, line = line[:end], line[end:]
		}
		word = strings.ReplaceAll(strings.ReplaceAll(word, "%%", "%"), "$$", "$")
		argv = append(argv, word)
	}
	return argv
}

// PlistArgs returns the ProgramArguments of a plist.
func PlistArgs(plist []byte) ([]string, error) {
	d := xml.NewDecoder(bytes.NewReader(plist))
	var args []string
	inArgs, depth, lastKey := false, 0, ""
	for {
		tok, err := d.Token()
		if err != nil {
			if inArgs || args != nil {
				return args, nil
			}
			return nil, fmt.Errorf("no ProgramArguments in the plist: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case t.Name.Local == "key":
				var k string
				d.DecodeElement(&k, &t)
				depth--
				lastKey = k
			case t.Name.Local == "array" && lastKey == "ProgramArguments":
				inArgs = true
			case t.Name.Local == "string" && inArgs:
				var s string
				d.DecodeElement(&s, &t)
				depth--
				args = append(args, s)
			}
		case xml.EndElement:
			depth--
			if t.Name.Local == "array" && inArgs {
				return args, nil
			}
		}
	}
}
