package node

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/tx"
)

// Upload limits: ciphertext that no anchor names yet is held for OrphanWindow at most, and
// counts against its uploader's and the node's quota until an anchor commits.
const (
	OrphanWindow          = 5 * time.Minute
	MaxPendingPerAccount  = 64 << 20
	MaxPendingUploadsEach = 256
	MaxPendingTotal       = 1 << 30
)

// ErrQuota is returned for an upload over the uploader's or the node's quota of unanchored
// ciphertext.
var ErrQuota = errors.New("too much ciphertext waiting for an anchor; anchor or wait before uploading more")

// orphans tracks uploaded ciphertext until an anchor commits it, and deletes what no anchor
// claims within OrphanWindow (after a restart, the window starts again for every unanchored
// blob found on disk).
type orphans struct {
	blobs  blob.Store
	app    *app.App
	logger *slog.Logger

	mu      sync.Mutex
	pending map[blob.Hash]upload
	bytes   map[tx.Address]int64
	count   map[tx.Address]int
	total   int64
}

type upload struct {
	by   tx.Address
	size int64
	at   time.Time
}

func newOrphans(blobs blob.Store, a *app.App, logger *slog.Logger) *orphans {
	return &orphans{blobs: blobs, app: a, logger: logger, pending: map[blob.Hash]upload{},
		bytes: map[tx.Address]int64{}, count: map[tx.Address]int{}}
}

// Admit implements api.UploadGate: it reserves quota for an upload before it is stored.
func (o *orphans) Admit(by tx.Address, h blob.Hash, size int64) error {
	if o.anchored(context.Background(), h) {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.pending[h]; ok {
		return nil
	}
	if o.over(by, size) {
		// The uploader's earlier uploads may have been anchored since the last sweep (a FHIR
		// transaction uploads 50 and anchors them at once): free those before refusing.
		o.mu.Unlock()
		o.reclaim(by)
		o.mu.Lock()
		if _, ok := o.pending[h]; ok {
			return nil
		}
		if o.over(by, size) {
			return ErrQuota
		}
	}
	o.add(h, upload{by: by, size: size, at: time.Now()})
	return nil
}

// over reports whether an upload of size by by would pass a quota.
func (o *orphans) over(by tx.Address, size int64) bool {
	return o.bytes[by]+size > MaxPendingPerAccount || o.count[by] >= MaxPendingUploadsEach || o.total+size > MaxPendingTotal
}

// reclaim forgets by's pending uploads that an anchor has committed since.
func (o *orphans) reclaim(by tx.Address) {
	o.mu.Lock()
	var mine []blob.Hash
	for h, u := range o.pending {
		if u.by == by {
			mine = append(mine, h)
		}
	}
	o.mu.Unlock()
	for _, h := range mine {
		if !o.anchored(context.Background(), h) {
			continue
		}
		o.mu.Lock()
		if u, ok := o.pending[h]; ok && u.by == by {
			o.drop(h)
		}
		o.mu.Unlock()
	}
}

func (o *orphans) add(h blob.Hash, u upload) {
	o.pending[h] = u
	o.bytes[u.by] += u.size
	o.count[u.by]++
	o.total += u.size
}

func (o *orphans) drop(h blob.Hash) {
	u := o.pending[h]
	delete(o.pending, h)
	o.bytes[u.by] -= u.size
	o.count[u.by]--
	o.total -= u.size
	if o.count[u.by] <= 0 {
		delete(o.bytes, u.by)
		delete(o.count, u.by)
	}
}

// Release implements api.UploadGate: the upload failed, give its quota back.
func (o *orphans) Release(h blob.Hash) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.pending[h]; ok {
		o.drop(h)
	}
}

func (o *orphans) anchored(ctx context.Context, h blob.Hash) bool {
	q, _ := json.Marshal(app.RecordsQuery{Hash: h[:]})
	resp, err := o.app.Query(ctx, &abci.RequestQuery{Path: app.PathRecordBlob, Data: q})
	return err == nil && resp.Code == 0
}

// adopt registers every unanchored blob on disk as a fresh upload, so that what a crash or an
// abandoned upload left behind is collected one window after start.
func (o *orphans) adopt(ctx context.Context) {
	now := time.Now()
	var found []blob.Hash
	err := o.blobs.List(ctx, func(h blob.Hash) error {
		if !o.anchored(ctx, h) {
			found = append(found, h)
		}
		return nil
	})
	if err != nil {
		o.logger.Error("orphan sweep: list blobs", "err", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, h := range found {
		if _, ok := o.pending[h]; !ok {
			o.add(h, upload{at: now})
		}
	}
}

// sweep forgets uploads an anchor committed and deletes those older than window.
func (o *orphans) sweep(ctx context.Context, window time.Duration) {
	o.mu.Lock()
	var check []blob.Hash
	for h := range o.pending {
		check = append(check, h)
	}
	o.mu.Unlock()
	now := time.Now()
	for _, h := range check {
		anchored := o.anchored(ctx, h)
		o.mu.Lock()
		u, ok := o.pending[h]
		expired := ok && now.Sub(u.at) > window
		if ok && (anchored || expired) {
			o.drop(h)
		}
		o.mu.Unlock()
		if expired && !anchored {
			if err := o.blobs.Delete(ctx, h); err != nil {
				o.logger.Error("delete orphaned blob", "blob", h.String(), "err", err)
			} else {
				o.logger.Info("deleted ciphertext no anchor claimed", "blob", h.String())
			}
		}
	}
}

func (o *orphans) run(ctx context.Context, window, every time.Duration) {
	o.adopt(ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			o.sweep(ctx, window)
		}
	}
}
