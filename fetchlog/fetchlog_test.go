package fetchlog_test

import (
	"sync"
	"testing"
	"time"

	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/fetchlog"
)

func entry(i int) records.FetchEntry {
	return records.FetchEntry{Requester: "0123456789012345678901234567890123456789", Patient: "9876543210987654321098765432109876543210",
		Record: "rec-1", Version: uint32(i), Access: 7, Outcome: records.Granted, Time: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)}
}

func TestAppendPendingAckReopen(t *testing.T) {
	dir := t.TempDir()
	l, err := fetchlog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if seq, err := l.Append(entry(i)); err != nil || seq != uint64(i) {
			t.Fatalf("append %d: seq %d, %v", i, seq, err)
		}
	}
	got, err := l.Pending(2, 2)
	if err != nil || len(got) != 2 || got[0].Seq != 3 || got[1].Version != 4 {
		t.Fatalf("pending = %+v, %v", got, err)
	}
	if err := l.Ack(3); err != nil || l.Backlog() != 2 {
		t.Fatalf("after ack: backlog %d, %v", l.Backlog(), err)
	}
	l.Close()
	if _, err := l.Append(entry(9)); err == nil {
		t.Fatal("append to a closed log succeeded")
	}

	// Reopened, the log continues its numbering and keeps what the ledger does not hold.
	l, err = fetchlog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, _ := l.Pending(3, 10); len(got) != 2 || got[0].Seq != 4 {
		t.Fatalf("pending after reopen = %+v", got)
	}
	if err := l.Ack(5); err != nil {
		t.Fatal(err)
	}
	if seq, err := l.Append(entry(6)); err != nil || seq != 6 {
		t.Fatalf("append after reopen and full ack: seq %d, %v", seq, err)
	}
	// A ledger ahead of the log (a lost log) moves numbering past it.
	if err := l.Resume(40); err != nil {
		t.Fatal(err)
	}
	if seq, _ := l.Append(entry(7)); seq != 41 {
		t.Fatalf("after resume(40) the next entry is %d", seq)
	}
}

// BenchmarkAppend is the cost a node adds to each ciphertext fetch: one synced write.
func BenchmarkAppend(b *testing.B) {
	l, err := fetchlog.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := entry(1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := l.Append(e); err != nil {
			b.Fatal(err)
		}
		if l.Backlog() > fetchlog.MaxBacklog/2 {
			l.Ack(uint64(i))
		}
	}
}

// Concurrent appends share synced batches and still get distinct, gap-free sequence numbers,
// each entry stored under its own number; a reopened log has them all.
func TestConcurrentAppendsGroupCommit(t *testing.T) {
	dir := t.TempDir()
	l, err := fetchlog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 50
	seqs := make(chan uint64, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e := entry(1)
				e.Version = uint32(w*each + i) // identifies the entry
				seq, err := l.Append(e)
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- seq<<32 | uint64(e.Version)
			}
		}()
	}
	wg.Wait()
	close(seqs)
	want := map[uint64]uint32{}
	for s := range seqs {
		want[s>>32] = uint32(s)
	}
	if len(want) != writers*each {
		t.Fatalf("%d distinct sequence numbers for %d appends", len(want), writers*each)
	}
	l.Close()
	if l, err = fetchlog.Open(dir); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got, err := l.Pending(0, writers*each+1)
	if err != nil || len(got) != writers*each {
		t.Fatalf("pending after reopen: %d entries, %v", len(got), err)
	}
	for i, e := range got {
		if e.Seq != uint64(i+1) || want[e.Seq] != e.Version {
			t.Fatalf("entry %d: seq %d holds version %d, the append of seq %d wrote %d", i, e.Seq, e.Version, e.Seq, want[e.Seq])
		}
	}
}

// BenchmarkAppendParallel is the same with many requests logging at once, as a busy node's
// API does: they share synced writes.
func BenchmarkAppendParallel(b *testing.B) {
	l, err := fetchlog.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		e := entry(1)
		for pb.Next() {
			seq, err := l.Append(e)
			if err != nil {
				b.Error(err)
				return
			}
			if l.Backlog() > fetchlog.MaxBacklog/2 {
				l.Ack(seq)
			}
		}
	})
}

// Entries appended together get consecutive numbers, even with other appends racing them, and
// come back in order; an empty append is an error.
func TestAppendAllKeepsEntriesTogether(t *testing.T) {
	l, err := fetchlog.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	firsts := make([]uint64, 20)
	for g := range firsts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq, err := l.AppendAll(entry(3*g), entry(3*g+1), entry(3*g+2))
			if err != nil {
				t.Error(err)
			}
			firsts[g] = seq
		}()
	}
	wg.Wait()
	got, err := l.Pending(0, 100)
	if err != nil || len(got) != 60 {
		t.Fatalf("pending: %d entries, %v", len(got), err)
	}
	for g, first := range firsts {
		for i := range 3 {
			if e := got[first-1+uint64(i)]; e.Seq != first+uint64(i) || e.Version != uint32(3*g+i) {
				t.Fatalf("append %d: entry %d is %+v", g, i, e)
			}
		}
	}
	if _, err := l.AppendAll(); err == nil {
		t.Fatal("an empty append succeeded")
	}
}
