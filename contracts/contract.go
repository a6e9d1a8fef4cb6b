// Package contracts holds what every state-machine module shares: the block context a message is
// executed in, the events it emits, and the typed-JSON state helpers. Each module lives in its own
// subpackage as pure rules over a state.KV: (state, message, context) -> (state', events, error).
package contracts

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Context is everything a message may depend on besides state: nothing from the wall clock,
// the network or randomness.
type Context struct {
	ChainID   string
	Height    int64
	Time      time.Time // block time, UTC
	Signer    tx.Address
	SignerKey ed25519.PublicKey // the key that signed this tx
	Nonce     uint64            // the nonce this tx carries
	TxHash    [32]byte          // SHA-256 of the tx bytes, as CometBFT names it
}

// Event is a typed, ordered record of what a message did; it becomes an ABCI event.
type Event struct {
	Type  string
	Attrs [][2]string
}

// NewEvent builds an event from alternating key, value strings.
func NewEvent(typ string, kv ...string) Event {
	e := Event{Type: typ}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Attrs = append(e.Attrs, [2]string{kv[i], kv[i+1]})
	}
	return e
}

// GetJSON loads key into v. It reports false when the key is absent.
func GetJSON(r state.Reader, key []byte, v any) (bool, error) {
	raw, err := r.Get(key)
	if err != nil {
		return false, codes.Errorf(codes.Internal, "read state: %v", err)
	}
	if raw == nil {
		return false, nil
	}
	if err := DecodeJSON(raw, v); err != nil {
		return false, fmt.Errorf("key %q: %w", key, err)
	}
	return true, nil
}

// DecodeJSON decodes a stored value; a failure is an Internal error (state is always written by
// PutJSON, so it is never the client's fault).
func DecodeJSON(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return codes.Errorf(codes.Internal, "decode state value: %v", err)
	}
	return nil
}

// PutJSON stores v under key. encoding/json is deterministic for structs (field order) and maps
// (sorted keys), which the AppHash relies on.
func PutJSON(kv state.KV, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return codes.Errorf(codes.Internal, "encode state %q: %v", key, err)
	}
	if err := kv.Set(key, raw); err != nil {
		return codes.Errorf(codes.Internal, "write state: %v", err)
	}
	return nil
}

// NextSeq increments and returns the counter stored at key (starting at 1).
func NextSeq(kv state.KV, key []byte) (uint64, error) {
	var n uint64
	if _, err := GetJSON(kv, key, &n); err != nil {
		return 0, err
	}
	n++
	return n, PutJSON(kv, key, n)
}

// SeqKey renders a sequence number so that keys sort numerically.
func SeqKey(n uint64) string { return fmt.Sprintf("%016x", n) }

// Load reads the JSON value at key into a new T, or returns a NotFound error built from
// notFound (a format string and its arguments).
func Load[T any](r state.Reader, key []byte, notFound string, args ...any) (*T, error) {
	var v T
	ok, err := GetJSON(r, key, &v)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, codes.Errorf(codes.NotFound, notFound, args...)
	}
	return &v, nil
}

// decodedReader is a state.Reader that keeps the values it decoded (state.View).
type decodedReader interface {
	Decoded(key []byte, decode func([]byte) (any, error)) (any, error)
}

// LoadShared is Load through the decoded values r keeps, where it keeps them (a query's view):
// the result is shared with the view's other readers and must not be modified.
func LoadShared[T any](r state.Reader, key []byte, notFound string, args ...any) (*T, error) {
	dr, ok := r.(decodedReader)
	if !ok {
		return Load[T](r, key, notFound, args...)
	}
	d, err := dr.Decoded(key, func(raw []byte) (any, error) {
		if raw == nil {
			return nil, codes.Errorf(codes.NotFound, notFound, args...)
		}
		var v T
		if err := DecodeJSON(raw, &v); err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		return &v, nil
	})
	if err != nil {
		if _, coded := errors.AsType[*codes.Error](err); !coded { // the view's own failure
			err = codes.Errorf(codes.Internal, "read state: %v", err)
		}
		return nil, err
	}
	return d.(*T), nil
}

// Handler executes one transaction type's raw message.
type Handler func(kv state.KV, ctx Context, raw json.RawMessage) ([]Event, error)

// Decode adapts a typed rule to a Handler that strictly decodes its message first.
func Decode[M any](rule func(state.KV, Context, *M) ([]Event, error)) Handler {
	return func(kv state.KV, ctx Context, raw json.RawMessage) ([]Event, error) {
		var m M
		if err := tx.DecodeMsg(raw, &m); err != nil {
			return nil, err
		}
		return rule(kv, ctx, &m)
	}
}

// List decodes every value under prefix, in key order.
func List[T any](r state.Reader, prefix []byte) ([]T, error) {
	var out []T
	var derr error
	err := r.Iterate(prefix, func(_, v []byte) bool {
		var x T
		if derr = DecodeJSON(v, &x); derr != nil {
			return true
		}
		out = append(out, x)
		return false
	})
	if err == nil {
		err = derr
	}
	return out, err
}
