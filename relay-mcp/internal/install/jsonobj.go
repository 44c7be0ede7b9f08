package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Object is a JSON object that keeps its keys in file order and every value
// byte for byte (numbers keep their precision, unknown fields stay as they
// are): editing one key of a client's config file leaves the rest alone.
type Object struct {
	keys []string
	vals map[string]json.RawMessage
}

// ParseObject reads a JSON object. Empty input (a missing or empty file) is
// an empty object.
func ParseObject(data []byte) (*Object, error) {
	o := &Object{vals: map[string]json.RawMessage{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return o, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if _, dup := o.vals[k]; !dup {
			o.keys = append(o.keys, k)
		}
		o.vals[k] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("data after the top-level object")
	}
	return o, nil
}

// Raw returns the value of key as it is in the file.
func (o *Object) Raw(key string) (json.RawMessage, bool) {
	v, ok := o.vals[key]
	return v, ok
}

// Object returns the object at key, or an empty one if key is absent. A
// key holding something other than an object is an error.
func (o *Object) Object(key string) (*Object, error) {
	v, ok := o.vals[key]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return ParseObject(nil)
	}
	sub, err := ParseObject(v)
	if err != nil {
		return nil, fmt.Errorf("%q is not a JSON object: %w", key, err)
	}
	return sub, nil
}

// Set puts value (marshalled to JSON) at key: in place when key exists,
// else at the end.
func (o *Object) Set(key string, value any) error {
	var raw json.RawMessage
	switch v := value.(type) {
	case *Object:
		raw = v.Marshal()
	case json.RawMessage:
		raw = v
	default:
		b, err := json.Marshal(value)
		if err != nil {
			return err
		}
		raw = b
	}
	if _, ok := o.vals[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.vals[key] = raw
	return nil
}

// SetPath sets the value at a path of nested objects (creating them),
// e.g. SetPath(v, "mcpServers", "relay").
func (o *Object) SetPath(value any, path ...string) error {
	if len(path) == 1 {
		return o.Set(path[0], value)
	}
	sub, err := o.Object(path[0])
	if err != nil {
		return err
	}
	if err := sub.SetPath(value, path[1:]...); err != nil {
		return err
	}
	return o.Set(path[0], sub)
}

// Marshal encodes the object compactly, keys in order.
func (o *Object) Marshal() json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(o.vals[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}

// Indented encodes the object with two-space indentation and a final
// newline, as the clients write their own files.
func (o *Object) Indented() []byte {
	var b bytes.Buffer
	if err := json.Indent(&b, o.Marshal(), "", "  "); err != nil {
		panic("install: indent of a marshalled object: " + err.Error()) // values came from a decoder or json.Marshal
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// EditJSON returns data with value set at path, every other key kept.
// Callers (mcpServers.relay here; Claude Code hooks too) pass it to
// UpdateFile. A file that is not a JSON object is an error.
func EditJSON(data []byte, value any, path ...string) ([]byte, error) {
	o, err := ParseObject(data)
	if err != nil {
		return nil, err
	}
	if err := o.SetPath(value, path...); err != nil {
		return nil, err
	}
	return o.Indented(), nil
}
