package node

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/keyring"
)

// Finding 14: ciphertext that no anchor claims is not kept. Uploads beyond an account's quota
// of unanchored ciphertext are refused, uploads no anchor claims within the window are
// deleted, and what a restart finds unanchored on disk is collected one window later.
func TestAttackOrphanUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node")
	}
	home := t.TempDir()
	ports, err := FreePorts()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureDev(home, ports); err != nil {
		t.Fatal(err)
	}
	start := func() (*Node, *client.Signer) {
		n, err := Start(home, Options{Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := client.New(n.APIAddr)
		if err := c.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		kr, err := keyring.OpenFile(KeyringDir(home))
		if err != nil {
			t.Fatal(err)
		}
		k, err := kr.Get("doctor", "")
		if err != nil {
			t.Fatal(err)
		}
		s, err := client.NewSigner(ctx, c, k)
		if err != nil {
			t.Fatal(err)
		}
		return n, s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, doctor := start()
	defer n.Stop()
	chunk := make([]byte, blob.MaxBytes)
	var first blob.Hash
	uploaded := 0
	for i := 0; ; i++ {
		rand.Read(chunk)
		h, err := doctor.C.PutBlob(ctx, doctor, chunk)
		if err != nil {
			var e *client.Error
			if !errors.As(err, &e) || e.Status != 429 {
				t.Fatalf("upload %d: %v", i, err)
			}
			break
		}
		if i == 0 {
			first = h
		}
		uploaded += len(chunk)
		if uploaded > MaxPendingPerAccount {
			t.Fatalf("%d bytes of unanchored ciphertext accepted, quota %d", uploaded, MaxPendingPerAccount)
		}
	}
	if uploaded != MaxPendingPerAccount {
		t.Fatalf("quota stopped uploads at %d bytes, want %d", uploaded, MaxPendingPerAccount)
	}
	// Past the window, nothing anchored them: they are deleted and the quota is free again.
	n.uploads.sweep(ctx, 0)
	if ok, err := n.blobs.Has(ctx, first); err != nil || ok {
		t.Fatalf("orphaned upload still stored: %v %v", ok, err)
	}
	rand.Read(chunk)
	h, err := doctor.C.PutBlob(ctx, doctor, chunk)
	if err != nil {
		t.Fatalf("quota not released after collection: %v", err)
	}
	// A blob found on disk that no anchor names (left by a crash between upload and anchor) is
	// adopted at start and collected after the window.
	n.uploads.sweep(ctx, 0)
	rand.Read(chunk)
	left := blob.Of(chunk)
	if err := n.blobs.Put(ctx, left, chunk); err != nil {
		t.Fatal(err)
	}
	n.uploads.adopt(ctx)
	if ok, _ := n.blobs.Has(ctx, h); ok {
		t.Fatal("second upload not collected")
	}
	if ok, _ := n.blobs.Has(ctx, left); !ok {
		t.Fatal("adoption deleted a blob before its window")
	}
	n.uploads.sweep(ctx, 0)
	if ok, _ := n.blobs.Has(ctx, left); ok {
		t.Fatal("orphan found on disk was not collected")
	}
}
