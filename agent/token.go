package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/medchain/medchain/fsutil"
)

// TokenFile is where an agent's bearer token lives in its home.
func TokenFile(home string) string { return filepath.Join(home, "agent.token") }

// LoadOrCreateToken returns the bearer token in home, generating a random one (mode 0600) at
// first start.
func LoadOrCreateToken(home string) (string, error) {
	raw, err := os.ReadFile(TokenFile(home))
	if err == nil {
		tok := strings.TrimSpace(string(raw))
		if len(tok) < 32 {
			return "", fmt.Errorf("%s holds a token shorter than 32 characters; delete it to generate a new one", TokenFile(home))
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read agent token: %w", err)
	}
	b := make([]byte, 32)
	rand.Read(b)
	tok := hex.EncodeToString(b)
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", err
	}
	if err := fsutil.WriteFileAtomic(TokenFile(home), []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write agent token: %w", err)
	}
	return tok, nil
}

// SMARTClientsFile is where an agent's home registers its SMART clients (a JSON array of
// smart.Client).
func SMARTClientsFile(home string) string { return filepath.Join(home, "smart-clients.json") }
