package coverage

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/logger"
)

// The keys of the development ceremony in ceremony/ (see its README): every binary carries
// them, genesis names their hashes, and a node refuses to start if they differ.
var (
	//go:embed ceremony/proving.key
	ceremonyProvingKey []byte
	//go:embed ceremony/verifying.key
	ceremonyVerifyingKey []byte
)

func init() { logger.Disable() } // gnark logs each compilation to stdout otherwise

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// CeremonyHashes are the hashes of the keys this binary carries: what genesis names.
func CeremonyHashes() KeyHashes {
	return KeyHashes{ProvingKey: sum(ceremonyProvingKey), VerifyingKey: sum(ceremonyVerifyingKey)}
}

// CheckCeremony reports whether this binary's keys are the ones want names (a node's start-up
// check against genesis).
func CheckCeremony(want KeyHashes) error {
	if have := CeremonyHashes(); have != want {
		return fmt.Errorf("coverage: this binary's circuit keys (verifying key %s…) are not the ones genesis names (%s…)",
			have.VerifyingKey[:12], want.VerifyingKey[:min(12, len(want.VerifyingKey))])
	}
	return nil
}

var ceremonyVK = sync.OnceValues(func() (*Keys, error) { return LoadKeys(nil, ceremonyVerifyingKey, CeremonyHashes()) })

var ceremonyKeys = sync.OnceValues(func() (*Keys, error) {
	return LoadKeys(ceremonyProvingKey, ceremonyVerifyingKey, CeremonyHashes())
})

// CeremonyVerifier returns the verifying key of the ceremony, if it is the one want names.
func CeremonyVerifier(want KeyHashes) (groth16.VerifyingKey, error) {
	if err := CheckCeremony(want); err != nil {
		return nil, err
	}
	k, err := ceremonyVK()
	if err != nil {
		return nil, err
	}
	return k.VK, nil
}

// CeremonyKeys returns the ceremony's keys for proving (loaded once, a second or so), if they are
// the ones want names.
func CeremonyKeys(want KeyHashes) (*Keys, error) {
	if err := CheckCeremony(want); err != nil {
		return nil, err
	}
	return ceremonyKeys()
}
