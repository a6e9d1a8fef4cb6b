package smart_test

import (
	"net/http"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// BenchmarkBackendToken is a backend service's token request: an ES384 assertion verified,
// its jti remembered, a token issued.
func BenchmarkBackendToken(b *testing.B) {
	key := ecKey(b)
	s := newServer(b, key)
	assertions := make([]string, b.N)
	for i := range assertions {
		assertions[i] = assertion(b, key, jose.ES384, nil)
	}
	b.ResetTimer()
	for i := range b.N {
		if status, _ := post(s, backendForm(assertions[i], "system/Patient.r")); status != http.StatusOK {
			b.Fatal(status)
		}
	}
}

// BenchmarkCheck is the check of an access token on every facade request.
func BenchmarkCheck(b *testing.B) {
	key := ecKey(b)
	s := newServer(b, key)
	_, body := post(s, backendForm(assertion(b, key, jose.ES384, nil), "system/Patient.r"))
	token := body["access_token"].(string)
	b.ResetTimer()
	for range b.N {
		if _, ok := s.Check(token); !ok {
			b.Fatal("token refused")
		}
	}
}
