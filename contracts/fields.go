package contracts

import (
	"unicode"
	"unicode/utf8"

	"github.com/medchain/medchain/codes"
)

// Text checks a human-readable field: valid UTF-8, no control characters, min..max bytes.
func Text(field, s string, min, max int) error {
	if len(s) < min || len(s) > max {
		return codes.Errorf(codes.Invalid, "%s must be %d..%d bytes, got %d", field, min, max, len(s))
	}
	if !utf8.ValidString(s) {
		return codes.Errorf(codes.Invalid, "%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return codes.Errorf(codes.Invalid, "%s contains a control character", field)
		}
	}
	return nil
}

// Token checks a machine identifier: 1..max bytes of [a-z0-9_-].
func Token(field, s string, max int) error {
	if len(s) == 0 || len(s) > max {
		return codes.Errorf(codes.Invalid, "%s must be 1..%d bytes", field, max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return codes.Errorf(codes.Invalid, "%s may contain only a-z, 0-9, '_' and '-'", field)
		}
	}
	return nil
}
