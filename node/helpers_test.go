package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/client"
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

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
