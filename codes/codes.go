// Package codes defines medchain's transaction and query result codes and the error type that
// carries one. Codes are part of the public API: clients switch on them, so the list is
// append-only and a number is never reused.
package codes

import (
	"errors"
	"fmt"
)

// Code is an ABCI result code. Zero means success.
type Code uint32

// Result codes. Append only; never renumber.
const (
	OK            Code = 0
	Malformed     Code = 1  // bytes do not decode as an envelope, body or message
	TooLarge      Code = 2  // tx or a field exceeds its size limit
	BadSignature  Code = 3  // signature does not verify over the body with the given key
	WrongChain    Code = 4  // body names another chain id
	BadNonce      Code = 5  // nonce is not the signer's next expected nonce
	UnknownType   Code = 6  // no module handles this tx or query type
	UnknownSigner Code = 7  // signer has no account (and the tx is not a registration)
	KeyMismatch   Code = 8  // envelope key is not the signer's current signing key
	Invalid       Code = 9  // message is well formed but breaks a rule (bad field value)
	Unauthorized  Code = 10 // signer may not do this
	NotFound      Code = 11 // subject does not exist (or may not be seen)
	AlreadyExists Code = 12 // subject exists already
	Internal      Code = 13 // a bug or storage failure; never the client's fault
	Expired       Code = 14 // the subject's validity has ended
)

var names = map[Code]string{
	OK: "ok", Malformed: "malformed", TooLarge: "too_large", BadSignature: "bad_signature",
	WrongChain: "wrong_chain", BadNonce: "bad_nonce", UnknownType: "unknown_type",
	UnknownSigner: "unknown_signer", KeyMismatch: "key_mismatch", Invalid: "invalid",
	Unauthorized: "unauthorized", NotFound: "not_found", AlreadyExists: "already_exists",
	Internal: "internal", Expired: "expired",
}

// String returns the stable snake_case name of the code, used in JSON errors and logs.
func (c Code) String() string {
	if n, ok := names[c]; ok {
		return n
	}
	return fmt.Sprintf("code_%d", uint32(c))
}

// All returns every defined code in numeric order (for documentation and tests).
func All() []Code {
	out := make([]Code, 0, len(names))
	for c := OK; int(c) < len(names); c++ {
		out = append(out, c)
	}
	return out
}

// Error is an error with a result code. Its message must never contain key material or
// plaintext health data: it is returned to clients and written to the chain's tx results.
type Error struct {
	Code Code
	Msg  string
}

// Error returns the message alone. The code is not part of the text: every channel that carries
// an Error carries its code beside the message (an ABCI result's Code and Log, an API error's
// code and message), and whoever shows it to a person names the code once. A text that held the
// code name too got it a second time wherever a result was turned back into an error or printed
// with its code ("invalid: invalid: ...").
func (e *Error) Error() string { return e.Msg }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(c Code, format string, args ...any) error {
	return &Error{Code: c, Msg: fmt.Sprintf(format, args...)}
}

// Of returns the code carried by err: OK for nil, Internal for errors without a code.
func Of(err error) Code {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}
