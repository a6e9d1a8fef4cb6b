package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/network"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/netkey"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/seal"
)

// Key release. A reader that holds no wrapped key of its own (a grantee, a guardian, a
// practitioner of a granted organization, an emergency practitioner) gets a record's data key
// from the network key's holders: it asks all of them at once, citing its granted access event,
// and combines the first Threshold shares that arrive (each sealed to this account's encryption
// key, each checked against the holder's public share when a combination fails).

// networkKeyTTL is how long the agent reuses the network key it read; a failed release reads it
// again at once (the holders may have changed).
const networkKeyTTL = time.Minute

// maxReleaseAnswer bounds one holder's answer: a sealed share, and a ciphertext asked for with
// it (base64 in JSON).
const maxReleaseAnswer = 4<<10 + api.MaxInlineCiphertext*4/3 + 4

type keyRelease struct {
	http *http.Client
	auth *reqsig.Sessions // the agent's sessions with the holders (an HMAC per request, not a signature)
	mu   sync.Mutex
	key  *network.Key
	at   time.Time
}

// Refusal is one holder's non-answer to a key release.
type Refusal struct {
	Holder network.Holder
	Reason string // "refused" (the holder found no valid access), "unreachable: ...", "invalid share", ...
}

// ReleaseError is a key release that got fewer valid shares than the network key's threshold.
type ReleaseError struct {
	Record   string
	Have     int
	Need     int
	Refusals []Refusal
}

func (e *ReleaseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "record %s: %d of the %d key shares needed", e.Record, e.Have, e.Need)
	for _, r := range e.Refusals {
		fmt.Fprintf(&b, "; holder %d (%s at %s): %s", r.Holder.Index, r.Holder.Node, r.Holder.API, r.Reason)
	}
	return b.String()
}

// Unwrap makes a release that every holder refused (no valid access: revoked, expired, erased,
// ended) ErrNotFound, as the access itself would have been.
func (e *ReleaseError) Unwrap() error {
	for _, r := range e.Refusals {
		if r.Reason != reasonRefused {
			return nil
		}
	}
	return ErrNotFound
}

const reasonRefused = "refused (no valid access for this record)"

// releaseRetryAfter is how long the agent waits before asking the holders that refused once
// more, when their shares would reach the threshold: a holder can be a block behind the access
// event it is asked about, or not yet serving the share of a key epoch just installed. A
// refusal that stands costs one more wait; the holders log both requests.
const releaseRetryAfter = 600 * time.Millisecond

// errNoNetworkKey is networkKey's error on a network whose validators have not generated the
// network key yet.
var errNoNetworkKey = errors.New("the network has no network key yet")

// networkKey returns the network key (verified against a signed header with a Trust), reading
// it again after networkKeyTTL or when fresh is set.
func (a *Agent) networkKey(ctx context.Context, fresh bool) (*network.Key, error) {
	kr := a.keys
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if kr.key != nil && !fresh && time.Since(kr.at) < networkKeyTTL {
		return kr.key, nil
	}
	var raw []byte
	if a.cfg.Trust != nil {
		v, err := a.cfg.Trust.Get(ctx, a.node, network.KeyStateKey(), 0)
		if client.IsNotFound(err) {
			return nil, errNoNetworkKey
		}
		if err != nil {
			return nil, fmt.Errorf("verify the network key: %w", err)
		}
		raw = v
	} else {
		p, err := a.node.State(ctx, network.KeyStateKey(), false)
		if client.IsNotFound(err) {
			return nil, errNoNetworkKey
		}
		if err != nil {
			return nil, fmt.Errorf("read the network key: %w", err)
		}
		raw = p.Value
	}
	var k network.Key
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("decode the network key: %w", err)
	}
	if err := k.Validate(); err != nil {
		return nil, err
	}
	kr.key, kr.at = &k, time.Now()
	return &k, nil
}

// dataKey returns rec's data key: unwrapped from this account's own key (the patient's and the
// author's), or released by the network key's holders for access event accessID.
func (a *Agent) dataKey(ctx context.Context, rec *records.Record, accessID uint64) ([]byte, error) {
	if key := a.ownKey(rec); key != nil {
		return key, nil
	}
	key, err := a.releaseKey(ctx, rec, accessID, false)
	var re *ReleaseError
	if errors.As(err, &re) && re.Unwrap() == nil { // not all refusals: the holders may have changed
		key, err = a.releaseKey(ctx, rec, accessID, true)
	}
	return key, err
}

// ownKey unwraps rec's data key from this account's own wrapped key (the patient's and the
// author's); nil if it has none that opens.
func (a *Agent) ownKey(rec *records.Record) []byte {
	own := rec.KeyFor(a.Address())
	if own == nil {
		return nil
	}
	// A key wrapped for an encryption key the account has since rotated away from (a claimed
	// custodial account) does not open: the holders release it like anyone's.
	key, err := seal.Unwrap(own, records.SealContext(a.signer.ChainID, rec.ID, rec.Version), a.signer.Key.Encryption)
	if err != nil {
		return nil
	}
	return key
}

type shareAnswer struct {
	holder     network.Holder
	share      *netkey.DecShare
	ciphertext []byte // when asked for with the share (api.ReleaseRequest.Ciphertext)
	reason     string
}

// releaseKey asks the holders for rec's data key under access event accessID.
func (a *Agent) releaseKey(ctx context.Context, rec *records.Record, accessID uint64, freshKey bool) ([]byte, error) {
	req := api.ReleaseRequest{Patient: rec.Patient, Access: accessID, Record: rec.ID, Version: rec.Version}
	return a.releaseWrapped(ctx, req, rec.Network, records.SealContext(a.signer.ChainID, rec.ID, rec.Version), rec.ID, freshKey, nil)
}

// releaseWithCiphertext is releaseKey that also asks the holder at the agent's node for the
// record's ciphertext in its answer (api.ReleaseRequest.Ciphertext): a read is then one exchange
// with that node instead of two. ct is nil when that holder did not send it (it refused, was
// down, or lacks it): the caller fetches it by itself.
func (a *Agent) releaseWithCiphertext(ctx context.Context, rec *records.Record, accessID uint64) (key, ct []byte, err error) {
	req := api.ReleaseRequest{Patient: rec.Patient, Access: accessID, Record: rec.ID, Version: rec.Version}
	label := records.SealContext(a.signer.ChainID, rec.ID, rec.Version)
	inline := new(inlineCiphertext)
	key, err = a.releaseWrapped(ctx, req, rec.Network, label, rec.ID, false, inline)
	var re *ReleaseError
	if errors.As(err, &re) && re.Unwrap() == nil { // not all refusals: the holders may have changed
		key, err = a.releaseWrapped(ctx, req, rec.Network, label, rec.ID, true, inline)
	}
	if err != nil {
		return nil, nil, err
	}
	ct = inline.get()
	if ct != nil && (len(rec.CiphertextHash) != len(blob.Hash{}) || blob.Of(ct) != blob.Hash(rec.CiphertextHash)) {
		ct = nil // not this record's ciphertext: the caller fetches it
	}
	return key, ct, nil
}

// inlineCiphertext is where a holder's answer leaves a ciphertext asked for with its key.
type inlineCiphertext struct {
	pending sync.WaitGroup // the request to that holder
	mu      sync.Mutex
	data    []byte
}

func (c *inlineCiphertext) get() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.data
}

// inlineHolder is the holder of k at an address of the agent's nodes: the one to ask for a
// ciphertext with its share, since the agent would fetch it there anyway.
func (a *Agent) inlineHolder(k *network.Key) (uint32, bool) {
	nodes := a.node.Nodes()
	for _, h := range k.Holders {
		if slices.Contains(nodes, strings.TrimRight(h.API, "/")) {
			return h.Index, true
		}
	}
	return 0, false
}

// inlineRead reports whether a read of rec should ask for its ciphertext with the key: a small
// record whose key this account does not hold itself, on a network where the agent's node
// holds a share.
func (a *Agent) inlineRead(ctx context.Context, rec *records.Record) bool {
	if rec.Size > api.MaxInlineCiphertext || a.ownKey(rec) != nil {
		return false
	}
	k, err := a.networkKey(ctx, false)
	if err != nil {
		return false
	}
	_, ok := a.inlineHolder(k)
	return ok
}

// releaseWrapped asks every holder for its share of wrapped (a key wrapped for the network key
// under label) at once and combines as soon as Threshold answers are in; a combination that
// fails (a holder lied) waits for more. what names the key in errors. With inline, one holder
// (inlineHolder) is also asked for the record's ciphertext, which its answer leaves there.
func (a *Agent) releaseWrapped(ctx context.Context, req api.ReleaseRequest, wrapped, label []byte, what string, freshKey bool, inline *inlineCiphertext) ([]byte, error) {
	key, err := a.networkKey(ctx, freshKey)
	if err != nil {
		return nil, err
	}
	w, err := netkey.Decode(wrapped, label)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	body, _ := json.Marshal(req)
	var withCT []byte // the body for the holder asked for the ciphertext too
	inlineAt := ^uint32(0)
	if inline != nil {
		if at, ok := a.inlineHolder(key); ok {
			r := req
			r.Ciphertext = true
			withCT, _ = json.Marshal(r)
			inlineAt = at
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var shares []*netkey.DecShare
	rerr := &ReleaseError{Record: what, Need: key.Threshold}
	ask := key.Holders
	for attempt := 0; attempt < 2; attempt++ {
		if attempt > 0 { // holders a block behind the access event, or still taking up a new key epoch
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(releaseRetryAfter):
			}
		}
		answers := make(chan shareAnswer, len(ask))
		for _, h := range ask {
			if h.Index == inlineAt {
				inline.pending.Add(1)
				go func() {
					defer inline.pending.Done()
					ans := a.askHolder(ctx, h, &req, withCT)
					if ans.ciphertext != nil {
						inline.mu.Lock()
						inline.data = ans.ciphertext
						inline.mu.Unlock()
					}
					answers <- ans
				}()
				continue
			}
			go func() { answers <- a.askHolder(ctx, h, &req, body) }()
		}
		var refused []network.Holder
		for range ask {
			ans := <-answers
			if ans.share == nil {
				rerr.Refusals = append(rerr.Refusals, Refusal{Holder: ans.holder, Reason: ans.reason})
				if ans.reason == reasonRefused {
					refused = append(refused, ans.holder)
				}
				continue
			}
			shares = append(shares, ans.share)
			if len(shares) < key.Threshold {
				continue
			}
			if k, err := netkey.Combine(&key.Public, w, shares); err == nil {
				if inline != nil {
					inline.pending.Wait() // the ciphertext is needed too; the other holders were enough for the key
				}
				return k, nil
			}
		}
		if len(refused) == 0 || len(shares)+len(refused) < key.Threshold {
			break
		}
		ask = refused
		rerr.Refusals = slices.DeleteFunc(rerr.Refusals, func(r Refusal) bool { return r.Reason == reasonRefused })
	}
	for _, d := range shares { // name the holders whose shares did not verify
		if netkey.VerifyShare(&key.Public, w, d) == nil {
			rerr.Have++
		} else if h := holderByIndex(key, d.Index); h != nil {
			rerr.Refusals = append(rerr.Refusals, Refusal{Holder: *h, Reason: "invalid share (its proof does not hold)"})
		}
	}
	return nil, rerr
}

func holderByIndex(k *network.Key, index uint32) *network.Holder {
	for i := range k.Holders {
		if k.Holders[i].Index == index {
			return &k.Holders[i]
		}
	}
	return nil
}

// post sends a release request to url in the agent's session with its holder (once more in a new
// session if the holder no longer holds it: it acted on nothing).
func (k *keyRelease) post(ctx context.Context, url string, body []byte) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		hr.Header.Set("Content-Type", "application/json")
		k.auth.Sign(hr, body, time.Now())
		resp, err := k.http.Do(hr)
		if err != nil {
			return nil, fmt.Errorf("unreachable: %w", err)
		}
		if attempt > 0 || !k.auth.Expired(hr, resp) {
			return resp, nil
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxReleaseAnswer))
		resp.Body.Close()
	}
}

// askHolder sends one signed release request and opens the sealed share.
func (a *Agent) askHolder(ctx context.Context, h network.Holder, req *api.ReleaseRequest, body []byte) shareAnswer {
	ans := shareAnswer{holder: h}
	resp, err := a.keys.post(ctx, strings.TrimRight(h.API, "/")+api.ReleasePath, body)
	if err != nil {
		ans.reason = err.Error()
		return ans
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReleaseAnswer))
	switch {
	case err != nil:
		ans.reason = "unreadable answer: " + err.Error()
		return ans
	case resp.StatusCode == http.StatusNotFound:
		ans.reason = reasonRefused
		return ans
	case resp.StatusCode != http.StatusOK:
		var e api.Error
		json.Unmarshal(raw, &e)
		ans.reason = fmt.Sprintf("HTTP %d %s", resp.StatusCode, e.Error.Message)
		return ans
	}
	var out api.ReleaseResponse
	if err := json.Unmarshal(raw, &out); err != nil || out.Index != h.Index {
		ans.reason = "malformed answer"
		return ans
	}
	share, err := seal.OpenBox(a.signer.Key.Encryption, api.ReleaseInfo(a.signer.ChainID, req, a.Address(), h.Index), out.Sealed)
	if err != nil {
		ans.reason = "a share not sealed to this account"
		return ans
	}
	ans.share = &netkey.DecShare{Index: h.Index, Share: share}
	ans.ciphertext = out.Ciphertext
	return ans
}
