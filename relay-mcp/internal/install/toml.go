package install

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Codex's config.toml is edited as text, not decoded and re-encoded: a TOML
// library that round-trips a document (go-toml/v2 included) drops comments
// and reorders tables, and people keep notes in that file. So the
// [mcp_servers.relay] table (with its subtables) is replaced line for line
// and every other line is kept as it was; go-toml/v2 only checks that the
// file parses before the edit and that the result parses and holds exactly
// the entry afterwards.

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

var tableHeader = regexp.MustCompile(`^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$`)

// tableKey splits a header's dotted key: mcp_servers."relay" → [mcp_servers relay].
func tableKey(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ".") {
		out = append(out, strings.Trim(strings.TrimSpace(p), `"'`))
	}
	return out
}

func hasPrefix(key, prefix []string) bool {
	if len(key) < len(prefix) {
		return false
	}
	for i := range prefix {
		if key[i] != prefix[i] {
			return false
		}
	}
	return true
}

// tomlString quotes s as a TOML basic string (JSON's escapes are TOML's).
func tomlString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSpace(b.String())
}

// tomlKey quotes a key when it is not a bare key.
func tomlKey(k string) string {
	if bareKey.MatchString(k) {
		return k
	}
	return tomlString(k)
}

// TOMLTable renders e as the table [table] (env as [table.env]).
func TOMLTable(table string, e Entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s]\n", table)
	fmt.Fprintf(&b, "command = %s\n", tomlString(e.Command))
	args := make([]string, len(e.Args))
	for i, a := range e.Args {
		args[i] = tomlString(a)
	}
	fmt.Fprintf(&b, "args = [%s]\n", strings.Join(args, ", "))
	if len(e.PassEnv) > 0 {
		names := make([]string, len(e.PassEnv))
		for i, n := range e.PassEnv {
			names[i] = tomlString(n)
		}
		fmt.Fprintf(&b, "env_vars = [%s]\n", strings.Join(names, ", "))
	}
	if e.Approve {
		b.WriteString("default_tools_approval_mode = \"approve\"\n")
	}
	if len(e.Env) > 0 {
		fmt.Fprintf(&b, "\n[%s.env]\n", table)
		keys := make([]string, 0, len(e.Env))
		for k := range e.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s = %s\n", tomlKey(k), tomlString(e.Env[k]))
		}
	}
	return b.String()
}

// EditTOMLTable returns data with the table at table (dotted, e.g.
// "mcp_servers.relay") set to e, every other line kept.
func EditTOMLTable(data []byte, table string, e Entry) ([]byte, error) {
	var before map[string]any
	if err := toml.Unmarshal(data, &before); err != nil {
		return nil, fmt.Errorf("not valid TOML: %w", err)
	}
	key := tableKey(table)
	text := string(data)
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	start, end := -1, len(lines)
	inMulti := false
	for i, ln := range lines {
		// Skip lines inside multi-line strings: a "[x]" there is text.
		if n := strings.Count(ln, `"""`) + strings.Count(ln, `'''`); n%2 == 1 {
			inMulti = !inMulti
			continue
		}
		if inMulti {
			continue
		}
		m := tableHeader.FindStringSubmatch(ln)
		if m == nil {
			continue
		}
		k := tableKey(m[1])
		if start < 0 && hasPrefix(k, key) {
			if len(k) != len(key) {
				return nil, fmt.Errorf("[%s] appears before [%s]: move it after, or remove it", m[1], table)
			}
			start = i
			continue
		}
		if start >= 0 && !hasPrefix(k, key) {
			end = i
			break
		}
	}
	if start < 0 && lookup(before, key) != nil {
		return nil, fmt.Errorf("%s is defined inline or with dotted keys, not as a [%s] table: remove it (or write it as that table) and run again", table, table)
	}
	block := TOMLTable(table, e)
	var out strings.Builder
	if start < 0 {
		out.WriteString(text)
		if text != "" && !strings.HasSuffix(text, "\n") {
			out.WriteString("\n")
		}
		if strings.TrimSpace(text) != "" && !strings.HasSuffix(text, "\n\n") {
			out.WriteString("\n")
		}
		out.WriteString(block)
	} else {
		// Blank and comment lines just before the next table belong to it.
		for end > start+1 && (strings.TrimSpace(lines[end-1]) == "" || strings.HasPrefix(strings.TrimSpace(lines[end-1]), "#")) {
			end--
		}
		for _, ln := range lines[:start] {
			out.WriteString(ln)
		}
		out.WriteString(block)
		for _, ln := range lines[end:] {
			out.WriteString(ln)
		}
	}
	result := []byte(out.String())
	var after map[string]any
	if err := toml.Unmarshal(result, &after); err != nil {
		return nil, fmt.Errorf("the edited file would not parse (%v): edit [%s] by hand", err, table)
	}
	if !reflect.DeepEqual(lookup(after, key), e.tomlValue()) {
		return nil, fmt.Errorf("could not replace [%s] cleanly: edit it by hand", table)
	}
	return result, nil
}

func lookup(m map[string]any, key []string) any {
	var v any = m
	for _, k := range key {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// tomlValue is e as go-toml/v2 decodes the table TOMLTable writes.
func (e Entry) tomlValue() map[string]any {
	args := make([]any, len(e.Args))
	for i, a := range e.Args {
		args[i] = a
	}
	m := map[string]any{"command": e.Command, "args": args}
	if len(e.PassEnv) > 0 {
		names := make([]any, len(e.PassEnv))
		for i, n := range e.PassEnv {
			names[i] = n
		}
		m["env_vars"] = names
	}
	if e.Approve {
		m["default_tools_approval_mode"] = "approve"
	}
	if len(e.Env) > 0 {
		env := map[string]any{}
		for k, v := range e.Env {
			env[k] = v
		}
		m["env"] = env
	}
	return m
}
