package codes_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/medchain/medchain/codes"
)

// TestAttackCodeNameNotRepeated (review 8, finding 23): an Error's text carried its code name, and
// every channel carries the code beside the text (ABCI Code and Log, API code and message), so a
// result turned back into an error, or printed with its code, read "invalid: invalid: ...".
func TestAttackCodeNameNotRepeated(t *testing.T) {
	err := codes.Errorf(codes.Invalid, "expires_at %s is not after the block time", "2001-01-01")
	if got := err.Error(); got != "expires_at 2001-01-01 is not after the block time" {
		t.Errorf("Error() = %q, want the message alone", got)
	}
	// What the app writes (Code, Log) and what the client and node rebuild or print from it.
	code, log := codes.Of(err), err.Error()
	rebuilt := codes.Errorf(code, "%s", log)
	for _, s := range []string{
		fmt.Sprintf("%s: %s", code, log),     // client.TxError, cmd tx
		fmt.Sprintf("%s: %v", code, rebuilt), // a rebuilt error printed with its code
	} {
		if n := strings.Count(s, "invalid"); n != 1 {
			t.Errorf("%q names the code %d times", s, n)
		}
	}
	if codes.Of(rebuilt) != codes.Invalid || codes.Of(fmt.Errorf("wrapped: %w", rebuilt)) != codes.Invalid {
		t.Error("the code is lost")
	}
}
