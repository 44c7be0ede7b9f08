package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// specPath is docs/protocol.md, from this package's folder.
const specPath = "../docs/protocol.md"

// olderProtocol is the heading from which docs/protocol.md describes the
// older Node relay's frames, which are not v1 frames.
const olderProtocol = "## The older Node relay's protocol"

// docFrame is one JSON frame shown in docs/protocol.md.
type docFrame struct {
	line int
	text string
}

// specFrames returns the v1 frames of docs/protocol.md: each line of its
// ```json blocks, and each `{"type":…}` code span of its prose. Frames with
// an ellipsis (…) are elided for reading and are counted apart.
func specFrames(t *testing.T) (frames []docFrame, elided int) {
	t.Helper()
	b, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	span := regexp.MustCompile("`(\\{\"type\":[^`]*)`")
	inJSON, inBlock := false, false
	for i, line := range strings.Split(string(b), "\n") {
		n := i + 1
		if strings.HasPrefix(line, olderProtocol) {
			break
		}
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			inBlock = !inBlock
			inJSON = inBlock && trimmed == "```json"
			continue
		}
		var found []string
		switch {
		case inJSON && trimmed != "":
			found = []string{trimmed}
		case !inBlock:
			for _, m := range span.FindAllStringSubmatch(line, -1) {
				found = append(found, m[1])
			}
		}
		for _, f := range found {
			if strings.Contains(f, "…") {
				elided++
				continue
			}
			frames = append(frames, docFrame{n, f})
		}
	}
	return frames, elided
}

// Every frame docs/protocol.md shows is a valid v1 frame: Decode accepts
// it, every field it names is a field of its type, and Encode writes it
// back the same (so the example is what a relay or client really sends,
// empty fields left out as the spec says).
func TestSpecFrames(t *testing.T) {
	frames, elided := specFrames(t)
	if len(frames) < 20 {
		t.Fatalf("found %d frames in %s: is the extraction broken?", len(frames), specPath)
	}
	if elided > 2 {
		t.Errorf("%d frames in %s are elided with …: show whole frames, so they are checked", elided, specPath)
	}
	t.Logf("%d frames checked, %d elided", len(frames), elided)
	for _, f := range frames {
		if err := checkSpecFrame([]byte(f.text)); err != nil {
			t.Errorf("docs/protocol.md:%d: %s\n\t%v", f.line, f.text, err)
		}
	}
}

// checkSpecFrame says what is wrong with one documented frame.
func checkSpecFrame(data []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return fmt.Errorf("not a JSON object: %v", err)
	}
	var typ string
	json.Unmarshal(fields["type"], &typ)
	f := newFrame(typ)
	if f == nil {
		return fmt.Errorf("unknown frame type %q", typ)
	}
	if _, err := Decode(data); err != nil {
		return fmt.Errorf("Decode: %v", err)
	}
	delete(fields, "type")
	rest, _ := json.Marshal(fields)
	d := json.NewDecoder(bytes.NewReader(rest))
	d.DisallowUnknownFields()
	if err := d.Decode(f); err != nil {
		return fmt.Errorf("as a %T: %v", f, err)
	}
	out, err := Encode(f)
	if err != nil {
		return err
	}
	var want, got any
	json.Unmarshal(data, &want)
	json.Unmarshal(out, &got)
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("Encode writes it as %s", out)
	}
	return nil
}

// The field tables of docs/protocol.md's frame reference name exactly the
// fields of each frame type: a field added to a frame must be documented,
// and a documented field must exist.
func TestSpecFieldTables(t *testing.T) {
	sections := specSections(t)
	checked := 0
	for _, typ := range allTypes {
		sec, ok := sections[typ]
		if !ok {
			t.Errorf("docs/protocol.md has no section \"### %s (…)\" in its frame reference", typ)
			continue
		}
		checked++
		own := jsonFields(reflect.TypeOf(newFrame(typ)).Elem(), false)
		all := jsonFields(reflect.TypeOf(newFrame(typ)).Elem(), true)
		for _, name := range own {
			if !slices.Contains(sec.fields, name) {
				t.Errorf("docs/protocol.md:%d: the %s frame's field %q is not in its table", sec.line, typ, name)
			}
		}
		for _, name := range sec.fields {
			if !slices.Contains(all, name) {
				t.Errorf("docs/protocol.md:%d: the table of %s names %q, which is not a field of %s (its fields: %s)", sec.line, typ, name, typ, strings.Join(own, ", "))
			}
		}
	}
	if peer, ok := sections["Peer"]; !ok {
		t.Error("docs/protocol.md has no \"### Peer\" section")
	} else if own := jsonFields(reflect.TypeOf(Peer{}), false); !slices.Equal(sorted(own), sorted(peer.fields)) {
		t.Errorf("docs/protocol.md:%d: the Peer table names %v; Peer has %v", peer.line, sorted(peer.fields), sorted(own))
	}
	t.Logf("%d frame tables checked", checked)
}

type specSection struct {
	line   int
	fields []string // every `name` in the first column of its tables
}

// specSections reads the frame reference: each "### name (…)" heading,
// or "### a (…) and b (…)", or "### …: a, b, c", with the field names of
// the tables below it.
func specSections(t *testing.T) map[string]*specSection {
	t.Helper()
	b, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile(`^### (.*)$`)
	word := regexp.MustCompile("^[A-Za-z_]+")
	code := regexp.MustCompile("`([a-z_]+)`")
	sections := map[string]*specSection{}
	var cur, target []*specSection // the heading's sections, and the current table's
	inRef := false
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "## ") {
			inRef = strings.HasPrefix(line, "## Frame reference")
			cur = nil
			continue
		}
		if !inRef {
			continue
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			cur = nil
			title := m[1]
			var names []string
			if head, list, ok := strings.Cut(title, ": "); ok && !strings.Contains(head, "(") {
				names = strings.Split(list, ", ")
			} else {
				for _, part := range strings.Split(title, " and ") {
					names = append(names, word.FindString(part))
				}
			}
			for _, name := range names {
				s := &specSection{line: i + 1}
				sections[name] = s
				cur = append(cur, s)
			}
			target = cur
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		switch {
		case first == "Field": // a heading's own table: its first frame's
			target = cur[:min(1, len(cur))]
			continue
		case strings.HasSuffix(first, "` field"): // "| `cleared` field |": that frame's table
			target = nil
			if s, ok := sections[strings.Trim(strings.TrimSuffix(first, " field"), "`")]; ok && slices.Contains(cur, s) {
				target = []*specSection{s}
			}
			continue
		case !strings.HasPrefix(line, "| `"):
			continue
		}
		for _, m := range code.FindAllStringSubmatch(first, -1) {
			for _, s := range target {
				s.fields = append(s.fields, m[1])
			}
		}
	}
	return sections
}

// jsonFields returns the JSON names of t's fields; deep adds those of the
// structs inside it (list elements, pointers, nested objects).
func jsonFields(t reflect.Type, deep bool) []string {
	var names []string
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, top bool)
	walk = func(t reflect.Type, top bool) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] || (!top && !deep) {
			return
		}
		seen[t] = true
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
			walk(f.Type, false)
		}
	}
	walk(t, true)
	return names
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// The summary table at the head of docs/protocol.md's frame reference
// ("| type | direction | answer |") is the frame table of table.go: the
// same types in the same order, each with its direction and its answer.
func TestSpecTypeTable(t *testing.T) {
	b, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile("`([a-z_]+)`")
	var rows [][]string // type, direction, answer
	inRef, inTable := false, false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			inRef = strings.HasPrefix(line, "## Frame reference")
		case inRef && strings.HasPrefix(line, "| type | direction | answer |"):
			inTable = true
		case inTable && strings.HasPrefix(line, "| `"):
			cells := strings.Split(strings.Trim(line, "| "), " | ")
			rows = append(rows, append(cells, "", "")[:3])
		case inTable && !strings.HasPrefix(line, "| ---"):
			inTable = false
		}
	}
	var want []string
	for _, ft := range Types() {
		want = append(want, ft.Name)
	}
	var got []string
	for _, r := range rows {
		got = append(got, strings.Trim(r[0], "`"))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("docs/protocol.md's frame table lists %v; protocol's frame table (table.go) has %v, in this order", got, want)
	}
	for i, ft := range Types() {
		dir, answer := strings.TrimSpace(rows[i][1]), strings.TrimSpace(rows[i][2])
		if dir != ft.Dir.String() {
			t.Errorf("docs/protocol.md: %s is %q; table.go says %s", ft.Name, dir, ft.Dir)
		}
		first := ""
		if m := code.FindStringSubmatch(answer); m != nil {
			first = m[1]
		}
		switch {
		case ft.Answer == "" && answer != "" && answer != "none":
			t.Errorf("docs/protocol.md: %s is answered with %q; table.go says it has no answer", ft.Name, answer)
		case ft.Answer != "" && first != ft.Answer:
			t.Errorf("docs/protocol.md: %s is answered with %q; table.go says `%s`", ft.Name, answer, ft.Answer)
		}
		if ft.Answer != "" && LookupType(ft.Answer) == nil {
			t.Errorf("table.go: %s is answered with %q, which is no frame type", ft.Name, ft.Answer)
		}
	}
}
