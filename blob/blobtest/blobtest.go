// Package blobtest is the contract every blob.Store backend must pass: a new backend calls Run
// from its tests and is tested for free.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/medchain/medchain/blob"
)

// Run checks a backend; open returns a new, empty store.
func Run(t *testing.T, open func(t *testing.T) blob.Store) {
	ctx := context.Background()
	data := []byte("ciphertext: not a health record in the clear")
	h := blob.Of(data)

	t.Run("put get delete", func(t *testing.T) {
		s := open(t)
		if _, err := s.Get(ctx, h); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("get before put: %v", err)
		}
		if err := s.Put(ctx, h, data); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, h, data); err != nil {
			t.Fatalf("put is not idempotent: %v", err)
		}
		got, err := s.Get(ctx, h)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get = %q, %v", got, err)
		}
		if ok, err := s.Has(ctx, h); !ok || err != nil {
			t.Fatalf("has = %v %v", ok, err)
		}
		if err := s.Delete(ctx, h); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, h); err != nil {
			t.Fatalf("delete is not idempotent: %v", err)
		}
		if _, err := s.Get(ctx, h); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
	})
	t.Run("list", func(t *testing.T) {
		s := open(t)
		other := []byte("another ciphertext")
		for _, d := range [][]byte{data, other} {
			if err := s.Put(ctx, blob.Of(d), d); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[blob.Hash]bool{}
		if err := s.List(ctx, func(h blob.Hash) error { seen[h] = true; return nil }); err != nil {
			t.Fatal(err)
		}
		if len(seen) != 2 || !seen[h] || !seen[blob.Of(other)] {
			t.Fatalf("listed %v", seen)
		}
	})
	t.Run("refuses a false name", func(t *testing.T) {
		s := open(t)
		if err := s.Put(ctx, blob.Of([]byte("other")), data); !errors.Is(err, blob.ErrMismatch) {
			t.Fatalf("err = %v", err)
		}
		if ok, _ := s.Has(ctx, blob.Of([]byte("other"))); ok {
			t.Fatal("mismatched blob was stored")
		}
	})
	t.Run("refuses oversize", func(t *testing.T) {
		s := open(t)
		big := make([]byte, blob.MaxBytes+1)
		if err := s.Put(ctx, blob.Of(big), big); !errors.Is(err, blob.ErrTooLarge) {
			t.Fatalf("err = %v", err)
		}
	})
}
