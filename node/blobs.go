package node

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/codes"
	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/state"
)

// BlobDir is where a node keeps ciphertexts.
func BlobDir(home string) string { return filepath.Join(home, "data", "blobs") }

// deleteBlobs removes erased ciphertexts after their erasure committed.
func deleteBlobs(blobs blob.Store, hashes [][32]byte, log *slog.Logger) {
	for _, h := range hashes {
		if err := blobs.Delete(context.Background(), h); err != nil {
			log.Error("delete erased ciphertext", "blob", blob.Hash(h).String(), "err", err)
		}
	}
	log.Info("erased ciphertexts deleted", "count", len(hashes))
}

// sweepErased deletes stored ciphertexts whose records are erased in committed state: a node
// that stopped between an erasure's commit and the deletion finishes it at the next start.
func sweepErased(store *state.Store, blobs blob.Store, log *slog.Logger) {
	if h, _ := store.LastCommit(); h == 0 {
		return
	}
	view, err := store.At(0)
	if err != nil {
		log.Error("erasure sweep: read state", "err", err)
		return
	}
	var erased [][32]byte
	err = blobs.List(context.Background(), func(h blob.Hash) error {
		rec, err := records.ByBlob(view, h[:])
		if err == nil && rec.Status == records.StatusErased {
			erased = append(erased, h)
		} else if err != nil && codes.Of(err) != codes.NotFound {
			return err
		}
		return nil
	})
	if err != nil {
		log.Error("erasure sweep", "err", err)
	}
	if len(erased) > 0 {
		deleteBlobs(blobs, erased, log)
	}
}
