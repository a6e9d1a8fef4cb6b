package tx

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// CheckDuplicateKeys reports an error if any JSON object in raw, at any depth, names a key twice.
// Keys are compared as encoding/json matches them to struct fields, that is case-insensitively
// ({"role":1,"Role":2} is a duplicate: with encoding/json the last one would silently win). raw
// must be exactly one JSON value; syntax errors are reported too.
//
// It reads raw with jsontext's decoder (github.com/go-json-experiment/json, the mirror of Go's
// encoding/json/v2), which checks the syntax and hands each key's raw bytes over without
// allocating, and it accepts the JSON encoding/json accepts: invalid UTF-8 inside strings is
// allowed (encoding/json replaces it with U+FFFD) and jsontext's own exact-duplicate check is
// off, as the folded comparison below finds those too.
func CheckDuplicateKeys(raw []byte) error {
	c := dupCheckers.Get().(*dupChecker)
	err := c.check(raw)
	c.reset()
	dupCheckers.Put(c)
	return err
}

var dupCheckers = sync.Pool{New: func() any { return new(dupChecker) }}

var jsontextV1Syntax = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// dupChecker is the reusable state of one CheckDuplicateKeys call.
type dupChecker struct {
	rd  bytes.Reader
	dec jsontext.Decoder

	folded []byte    // the folded keys of the open objects, back to back
	keys   []keySpan // where each of those keys is in folded
	open   []object  // the open objects, outermost first
}

type keySpan struct{ start, end int }

// object is an open JSON object: its keys are keys[first:] (folded[foldedLen:]), and also in set
// once there are many.
type object struct {
	first, foldedLen int
	set              map[string]struct{}
}

// linearKeys is how many keys an object may have before they go into a map: below it, comparing
// with each is cheaper than hashing; above it, a map keeps a huge object linear.
const linearKeys = 16

func (c *dupChecker) check(raw []byte) error {
	c.rd.Reset(raw)
	c.dec.Reset(&c.rd, jsontextV1Syntax...)
	for {
		if kind, n := c.dec.StackIndex(c.dec.StackDepth()); kind == '{' && n%2 == 0 && c.dec.PeekKind() == '"' {
			name, err := c.dec.ReadValue() // an object key, still quoted
			if err != nil {
				return err
			}
			if err := c.addKey(name); err != nil {
				return err
			}
			continue
		}
		tok, err := c.dec.ReadToken()
		if err == io.EOF {
			return fmt.Errorf("no JSON value") // a value ends at depth 0, before EOF
		}
		if err != nil {
			return err
		}
		switch tok.Kind() {
		case '{':
			c.open = append(c.open, object{first: len(c.keys), foldedLen: len(c.folded)})
		case '}':
			top := &c.open[len(c.open)-1]
			c.keys, c.folded = c.keys[:top.first], c.folded[:top.foldedLen]
			*top = object{}
			c.open = c.open[:len(c.open)-1]
		}
		if c.dec.StackDepth() == 0 { // one whole value read
			if _, err := c.dec.ReadToken(); err != io.EOF {
				if err == nil {
					err = fmt.Errorf("trailing data after JSON value")
				}
				return err
			}
			return nil
		}
	}
}

// addKey records a key of the innermost open object, or reports that the object has it already.
func (c *dupChecker) addKey(quoted jsontext.Value) error {
	name := []byte(quoted[1 : len(quoted)-1])
	if bytes.IndexByte(name, '\\') >= 0 {
		// Unescape as encoding/json does (invalid escapes of surrogates become U+FFFD); rare.
		var s string
		if err := json.Unmarshal(quoted, &s); err != nil {
			return err
		}
		name = []byte(s)
	}
	start := len(c.folded)
	c.folded = appendFold(c.folded, name)
	k := c.folded[start:]
	obj := &c.open[len(c.open)-1]
	dup := false
	switch {
	case obj.set != nil:
		_, dup = obj.set[string(k)]
		if !dup {
			obj.set[string(k)] = struct{}{}
		}
	default:
		for _, s := range c.keys[obj.first:] {
			if bytes.Equal(c.folded[s.start:s.end], k) {
				dup = true
				break
			}
		}
		if !dup && len(c.keys)-obj.first == linearKeys {
			obj.set = make(map[string]struct{}, 2*linearKeys)
			for _, s := range c.keys[obj.first:] {
				obj.set[string(c.folded[s.start:s.end])] = struct{}{}
			}
			obj.set[string(k)] = struct{}{}
		}
	}
	if dup {
		return fmt.Errorf("duplicate object key %q", truncate(string(name)))
	}
	c.keys = append(c.keys, keySpan{start, len(c.folded)})
	return nil
}

// reset drops what the last check held (the input, the key maps) before the checker is pooled.
func (c *dupChecker) reset() {
	c.rd.Reset(nil)
	c.dec.Reset(&c.rd)
	c.folded, c.keys = c.folded[:0], c.keys[:0]
	clear(c.open[:cap(c.open)])
	c.open = c.open[:0]
}

// appendFold appends s folded the way encoding/json folds a key when it matches object keys to
// struct field names: two keys fold equal exactly when encoding/json would treat them as the
// same field. Invalid UTF-8 folds as U+FFFD, byte by byte, as encoding/json decodes it.
func appendFold(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		i += size
		for { // the smallest rune of r's fold set, as encoding/json's foldName
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}
