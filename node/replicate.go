package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/reqsig"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Replication. When an anchor commits, every node fetches the ciphertext from a peer that has
// it (medchain.toml peer_apis), checks its hash and stores it, so any node serves any record
// and losing one node loses nothing. A node that lacks a blob when a reader asks fetches it on
// demand; at start a node re-fetches every anchored, unerased blob it misses. Peers answer a
// node's signed request (its node account) for any anchored, unerased ciphertext: nodes hold
// ciphertext only.

// ReplicaQuery marks a blob request as a node's replication fetch.
const ReplicaQuery = "replica"

const (
	replicateWorkers = 4
	replicateQueue   = 100_000
	peerTimeout      = 30 * time.Second
	replicateTries   = 10 // then the blob waits for an on-demand fetch or the next restart
)

type replicator struct {
	peers   []string
	blobs   blob.Store
	key     ed25519.PrivateKey
	addr    tx.Address
	chainID string
	logger  *slog.Logger
	http    *http.Client

	queue chan blob.Hash
	mu    sync.Mutex
	inq   map[blob.Hash]bool
	tries map[blob.Hash]int
}

func newReplicator(peers []string, blobs blob.Store, key ed25519.PrivateKey, chainID string, logger *slog.Logger) *replicator {
	clean := make([]string, 0, len(peers))
	for _, p := range peers {
		p = strings.TrimRight(p, "/")
		if !strings.Contains(p, "://") {
			p = "http://" + p
		}
		clean = append(clean, p)
	}
	return &replicator{peers: clean, blobs: blobs, key: key, addr: tx.AddressOf(key.Public().(ed25519.PublicKey)), chainID: chainID,
		logger: logger, http: &http.Client{Timeout: peerTimeout}, queue: make(chan blob.Hash, replicateQueue), inq: map[blob.Hash]bool{}, tries: map[blob.Hash]int{}}
}

// enqueue asks for hashes to be fetched in the background; it never blocks consensus.
func (r *replicator) enqueue(hashes [][32]byte) {
	if len(r.peers) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range hashes {
		if r.inq[h] {
			continue
		}
		select {
		case r.queue <- h:
			r.inq[h] = true
		default:
			r.logger.Warn("replication queue full; the blob will be fetched on demand or at restart", "blob", blob.Hash(h).String())
		}
	}
}

// catchUp queues every anchored, unerased blob this node does not hold.
func (r *replicator) catchUp(ctx context.Context, view state.Reader) {
	var missing [][32]byte
	err := records.EachBlob(view, func(h []byte) bool {
		var hh blob.Hash
		copy(hh[:], h)
		if ok, err := r.blobs.Has(ctx, hh); err == nil && !ok {
			if rec, err := records.ByBlob(view, h); err == nil && rec.Status != records.StatusErased {
				missing = append(missing, hh)
			}
		}
		return ctx.Err() == nil
	})
	if err != nil {
		r.logger.Error("replication catch-up", "err", err)
	}
	if len(missing) > 0 {
		r.logger.Info("fetching ciphertext missed while down", "blobs", len(missing))
		r.enqueue(missing)
	}
}

func (r *replicator) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range replicateWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case h := <-r.queue:
					_, err := r.fetch(ctx, h)
					r.mu.Lock()
					delete(r.inq, h)
					tries := r.tries[h] + 1
					if err == nil || tries >= replicateTries {
						delete(r.tries, h)
					} else {
						r.tries[h] = tries
					}
					r.mu.Unlock()
					if err != nil && ctx.Err() == nil {
						r.logger.Warn("replicate blob", "blob", h.String(), "try", tries, "err", err)
						if tries < replicateTries { // a peer may not have it yet: retry with backoff
							time.AfterFunc(time.Duration(1<<tries)*100*time.Millisecond, func() { r.enqueue([][32]byte{h}) })
						}
					}
				}
			}
		}()
	}
	wg.Wait()
}

// ErrNowhere is returned when no peer holds a blob.
var ErrNowhere = errors.New("no peer holds this ciphertext")

// fetch stores blob h from the first peer that has it (peers in random order) and returns it.
func (r *replicator) fetch(ctx context.Context, h blob.Hash) ([]byte, error) {
	if data, err := r.blobs.Get(ctx, h); err == nil {
		return data, nil
	}
	var errs []error
	for _, i := range rand.Perm(len(r.peers)) {
		data, err := r.fetchFrom(ctx, r.peers[i], h)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := r.blobs.Put(ctx, h, data); err != nil {
			return nil, fmt.Errorf("store replicated blob: %w", err)
		}
		return data, nil
	}
	return nil, errors.Join(append([]error{ErrNowhere}, errs...)...)
}

func (r *replicator) fetchFrom(ctx context.Context, peer string, h blob.Hash) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peer+"/v1/blobs/"+h.String()+"?"+ReplicaQuery+"=1", nil)
	if err != nil {
		return nil, err
	}
	reqsig.Sign(req, r.chainID, r.addr, r.key, nil, time.Now())
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("peer %s: %w", peer, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, blob.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("peer %s: %w", peer, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("peer %s: HTTP %d", peer, resp.StatusCode)
	}
	if blob.Of(data) != h {
		return nil, fmt.Errorf("peer %s sent bytes that do not hash to %s", peer, h)
	}
	return data, nil
}

// Fetch implements api.Replicas: fetch a blob this node lacks from its peers, now.
func (r *replicator) Fetch(ctx context.Context, h blob.Hash) ([]byte, error) {
	if len(r.peers) == 0 {
		return nil, ErrNowhere
	}
	return r.fetch(ctx, h)
}

// copiesTimeout bounds one peer's answer to a copies check.
const copiesTimeout = 5 * time.Second

// Copies implements api.Replicas: this node (if it holds h) and every peer that confirms, to a
// signed HEAD replication request, that it holds h; of is 1 + the number of peers.
func (r *replicator) Copies(ctx context.Context, h blob.Hash) (held, of int) {
	if ok, err := r.blobs.Has(ctx, h); err == nil && ok {
		held = 1
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, peer := range r.peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r.peerHolds(ctx, peer, h) {
				mu.Lock()
				held++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return held, 1 + len(r.peers)
}

func (r *replicator) peerHolds(ctx context.Context, peer string, h blob.Hash) bool {
	ctx, cancel := context.WithTimeout(ctx, copiesTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, peer+"/v1/blobs/"+h.String()+"?"+ReplicaQuery+"=1", nil)
	if err != nil {
		return false
	}
	reqsig.Sign(req, r.chainID, r.addr, r.key, nil, time.Now())
	resp, err := r.http.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
