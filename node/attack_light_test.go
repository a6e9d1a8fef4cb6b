package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cometbft/cometbft/types"

	"github.com/medchain/medchain/api"
)

// TestAttackLightBlocks abuses the node API's light blocks (issue 10: light clients use the
// node API, not CometBFT's RPC): heights that are malformed, not yet committed or absurd, and
// evidence that is garbage, oversized or well-formed but false.
func TestAttackLightBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node")
	}
	n, c, _ := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	base := "http://" + n.APIAddr
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	code, raw := get(api.LightPath + "latest")
	if code != http.StatusOK {
		t.Fatalf("latest light block: %d %s", code, raw)
	}
	var pb cmtproto.LightBlock
	if err := pb.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	lb, err := types.LightBlockFromProto(&pb)
	if err != nil || lb.ValidateBasic(n.ChainID) != nil || lb.Height < 1 {
		t.Fatalf("latest light block does not validate: %v", err)
	}
	errCode := func(body []byte) string {
		var e api.Error
		json.Unmarshal(body, &e)
		return e.Error.Code
	}
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"0", http.StatusBadRequest, "malformed"},
		{"-1", http.StatusBadRequest, "malformed"},
		{"abc", http.StatusBadRequest, "malformed"},
		{"99999999999999999999", http.StatusBadRequest, "malformed"},
		{"9223372036854775807", http.StatusNotFound, api.CodeHeightAhead},
		{"1000000", http.StatusNotFound, api.CodeHeightAhead},
	} {
		if code, body := get(api.LightPath + tc.path); code != tc.status || errCode(body) != tc.code {
			t.Errorf("light block %q: %d %s, want %d %s", tc.path, code, body, tc.status, tc.code)
		}
	}
	post := func(body []byte) (int, string) {
		t.Helper()
		resp, err := http.Post(base+api.EvidencePath, "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, errCode(b)
	}
	if code, ec := post([]byte("not protobuf at all")); code != http.StatusBadRequest {
		t.Errorf("garbage evidence: %d %s", code, ec)
	}
	if code, ec := post(make([]byte, api.MaxEvidence+1)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized evidence: %d %s", code, ec)
	}
	// Well-formed evidence of an attack that never happened: the node's evidence pool refuses it.
	fake := &types.LightClientAttackEvidence{ConflictingBlock: lb, CommonHeight: lb.Height,
		TotalVotingPower: lb.ValidatorSet.TotalVotingPower(), Timestamp: lb.Time}
	evpb, err := types.EvidenceToProto(fake)
	if err != nil {
		t.Fatal(err)
	}
	evRaw, _ := evpb.Marshal()
	if code, ec := post(evRaw); code/100 == 2 {
		t.Errorf("false evidence accepted: %d %s", code, ec)
	}
}
