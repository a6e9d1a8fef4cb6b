package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/identity"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/tx"
)

// waitTx looks a committed tx up, allowing for CometBFT's asynchronous tx indexing.
func waitTx(t *testing.T, c *client.Client, hash string) *api.TxResult {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := c.Tx(context.Background(), hash)
		if err == nil {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("tx %s not found: %v", hash, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// registerPractitioner registers a new practitioner account through c and returns its key and
// the registration's bytes.
func registerPractitioner(ctx context.Context, t *testing.T, c *client.Client, chainID, name string) (*keyring.Key, []byte) {
	t.Helper()
	doc, _ := keyring.Generate(name)
	raw, _ := tx.Sign(doc.Signing, chainID, doc.Address, 0, identity.TypeRegister,
		identity.Register{Role: identity.RolePractitioner, Name: name, EncryptionKey: doc.Encryption.PublicKey().Bytes()})
	if res, err := c.Submit(ctx, raw, "commit"); err != nil || res.Code != 0 || res.Height == 0 {
		t.Fatalf("register %s: %+v %v", name, res, err)
	}
	return doc, raw
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
