package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/seal"
)

// Batch key release. A search page or an export opens many records under the same few access
// events: the agent asks each holder for up to api.MaxReleaseBatch records' shares in one
// request (one signed request, one sealed answer, the holder's log entries in one synced batch)
// instead of one request per record. Whatever a batch does not yield (a holder that refused, one
// a block behind, a network key that changed) takes the one-record path, with its retries and
// its errors.

// maxBatchAnswer bounds one holder's batch answer.
const maxBatchAnswer = 64 << 10

// inParallel calls do(0..n-1), at most limit at once, and waits for all of them.
func inParallel(n, limit int, do func(int)) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, limit)
	for i := range n {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			do(i)
		}()
	}
	wg.Wait()
}

// openAll opens recs[i] under access event access[i]: it verifies the anchors, then gets the
// data keys (unwrapped, or released in batches) while it fetches the ciphertexts (openInFlight
// at once), then decrypts. errs[i] is what open would have said of recs[i].
func (a *Agent) openAll(ctx context.Context, recs []*records.Record, access []uint64) (out []*Plain, errs []error) {
	n := len(recs)
	out, errs = make([]*Plain, n), make([]error, n)
	inParallel(n, openInFlight, func(i int) { errs[i] = a.checkRecord(ctx, recs[i]) })
	var live []int
	for i := range recs {
		if errs[i] == nil {
			live = append(live, i)
		}
	}
	cts, blobErrs := make([][]byte, n), make([]error, n)
	fetched := make(chan struct{})
	go func() {
		defer close(fetched)
		inParallel(len(live), openInFlight, func(j int) {
			i := live[j]
			cts[i], blobErrs[i] = a.node.GetBlob(ctx, a.signer, recs[i].CiphertextHash, recs[i].Patient, access[i])
		})
	}()
	liveRecs, liveAccess := make([]*records.Record, len(live)), make([]uint64, len(live))
	for j, i := range live {
		liveRecs[j], liveAccess[j] = recs[i], access[i]
	}
	keys, keyErrs := a.dataKeys(ctx, liveRecs, liveAccess)
	<-fetched
	for j, i := range live {
		switch {
		case keyErrs[j] != nil:
			errs[i] = keyErrs[j]
		case blobErrs[i] != nil:
			errs[i] = notFound(blobErrs[i])
		default:
			out[i], errs[i] = a.decrypt(recs[i], cts[i], keys[j])
		}
	}
	return out, errs
}

// dataKeys is dataKey for many records: own keys unwrapped, the others released in batches,
// and what the batches did not yield one by one.
func (a *Agent) dataKeys(ctx context.Context, recs []*records.Record, access []uint64) ([][]byte, []error) {
	keys, errs := make([][]byte, len(recs)), make([]error, len(recs))
	var ask []int
	for i, rec := range recs {
		if own := rec.KeyFor(a.Address()); own != nil {
			if k, err := seal.Unwrap(own, records.SealContext(a.signer.ChainID, rec.ID, rec.Version), a.signer.Key.Encryption); err == nil {
				keys[i] = k
				continue
			}
		}
		ask = append(ask, i)
	}
	if len(ask) > 1 {
		for start := 0; start < len(ask); start += api.MaxReleaseBatch {
			chunk := ask[start:min(start+api.MaxReleaseBatch, len(ask))]
			for i, k := range a.releaseBatch(ctx, recs, access, chunk) {
				keys[i] = k
			}
		}
	}
	var rest []int
	for _, i := range ask {
		if keys[i] == nil {
			rest = append(rest, i)
		}
	}
	inParallel(len(rest), openInFlight, func(j int) {
		i := rest[j]
		keys[i], errs[i] = a.dataKey(ctx, recs[i], access[i])
	})
	return keys, errs
}

// releaseBatch asks every holder at once for the shares of the records recs[idx...] and returns
// the data keys it could combine, by index into recs. It stops waiting once every record has
// Threshold shares, and gives up (returning what it has) on any trouble: the caller asks again
// one record at a time.
func (a *Agent) releaseBatch(ctx context.Context, recs []*records.Record, access []uint64, idx []int) map[int][]byte {
	key, err := a.networkKey(ctx, false)
	if err != nil {
		return nil
	}
	reqs := make([]api.ReleaseRequest, len(idx))
	wraps := make([]*netkey.Wrapped, len(idx))
	for j, i := range idx {
		rec := recs[i]
		reqs[j] = api.ReleaseRequest{Patient: rec.Patient, Access: access[i], Record: rec.ID, Version: rec.Version}
		wraps[j], _ = netkey.Decode(rec.Network, records.SealContext(a.signer.ChainID, rec.ID, rec.Version))
	}
	body, err := json.Marshal(api.ReleaseBatchRequest{Requests: reqs})
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make(chan batchAnswer, len(key.Holders))
	for _, h := range key.Holders {
		go func() { answers <- a.askHolderBatch(ctx, h, body, len(idx)) }()
	}
	shares := make([][]*netkey.DecShare, len(idx))
	for range key.Holders {
		ans := <-answers
		for j, s := range ans.shares {
			if len(s) > 0 {
				shares[j] = append(shares[j], &netkey.DecShare{Index: ans.index, Share: s})
			}
		}
		enough := true
		for j := range shares {
			enough = enough && len(shares[j]) >= key.Threshold
		}
		if enough {
			break
		}
	}
	out := make(map[int][]byte, len(idx))
	for j, i := range idx {
		if wraps[j] == nil || len(shares[j]) < key.Threshold {
			continue
		}
		if k, err := netkey.Combine(&key.Public, wraps[j], shares[j]); err == nil {
			out[i] = k
		}
	}
	return out
}

// batchAnswer is one holder's batch answer: its shares, one per request (empty where it
// released none), or no shares at all when it answered nothing usable.
type batchAnswer struct {
	index  uint32
	shares [][]byte
}

// askHolderBatch sends one batch release of n records to holder h and opens its answer.
func (a *Agent) askHolderBatch(ctx context.Context, h network.Holder, body []byte, n int) batchAnswer {
	none := batchAnswer{index: h.Index}
	resp, err := a.keys.post(ctx, strings.TrimRight(h.API, "/")+api.ReleaseBatchPath, body)
	if err != nil {
		return none
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBatchAnswer))
	if err != nil || resp.StatusCode != http.StatusOK {
		return none
	}
	var out api.ReleaseResponse
	if json.Unmarshal(raw, &out) != nil || out.Index != h.Index {
		return none
	}
	plain, err := seal.OpenBox(a.signer.Key.Encryption, api.ReleaseBatchInfo(a.signer.ChainID, body, a.Address(), h.Index), out.Sealed)
	if err != nil {
		return none
	}
	var s api.ReleaseBatchShares
	if json.Unmarshal(plain, &s) != nil || len(s.Shares) != n {
		return none
	}
	return batchAnswer{index: h.Index, shares: s.Shares}
}
