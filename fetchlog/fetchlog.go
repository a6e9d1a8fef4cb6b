// Package fetchlog is a node's durable log of the ciphertext requests it answered. The node
// appends an entry, synced to disk, before it serves (or refuses) a blob, so nothing is served
// that is not logged (fail closed); a background Shipper commits the log to the ledger in
// batches (records/fetch_log) and drops what the ledger holds. The log is a goleveldb database
// keyed by sequence number.
package fetchlog

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/medchain/medchain/contracts/records"
)

// MaxBacklog is how many entries may wait for the ledger. Past it the log refuses new entries,
// and so the node refuses to serve, until the ledger catches up.
const MaxBacklog = 100_000

// ErrBacklog is returned by Append when too many entries wait for the ledger.
var ErrBacklog = errors.New("fetch log: too many entries wait for the ledger")

// Entry is a logged entry with its sequence number.
type Entry struct {
	Seq uint64
	records.FetchEntry
}

// Log is the durable fetch log.
//
// Appends are group-committed: concurrent Appends queue their entries and one of them (the
// leader) writes everything queued in one synced batch, again and again until the queue is
// empty, so a busy node pays one disk sync per batch rather than per entry. Sequence numbers
// are assigned in queue order and batches are written in that order, so the log never has a
// gap; if a write fails the log closes (fail closed) rather than leave one.
type Log struct {
	db *leveldb.DB

	mu      sync.Mutex
	next    uint64 // sequence number of the next entry
	acked   uint64 // entries up to this are on the ledger and deleted here
	closed  bool
	broken  error     // a write failed: the log accepts nothing more
	queue   []*queued // assigned, not yet written
	writing bool      // a leader is writing the queue
}

type queued struct {
	seq  uint64   // of raws[0]; the others follow
	raws [][]byte // one append's entries
	done chan error
}

var sync_ = &opt.WriteOptions{Sync: true}

// Open opens (creating) the log in dir.
func Open(dir string) (*Log, error) {
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		return nil, fmt.Errorf("open fetch log %s: %w", dir, err)
	}
	l := &Log{db: db}
	if raw, err := db.Get(ackedKey, nil); err == nil && len(raw) == 8 {
		l.acked = binary.BigEndian.Uint64(raw)
	} else if err != nil && !errors.Is(err, leveldb.ErrNotFound) {
		db.Close()
		return nil, fmt.Errorf("read fetch log: %w", err)
	}
	l.next = l.acked + 1
	it := db.NewIterator(entries, nil)
	if it.Last() {
		l.next = max(l.next, binary.BigEndian.Uint64(it.Key())+1)
	}
	it.Release()
	if err := it.Error(); err != nil {
		db.Close()
		return nil, fmt.Errorf("read fetch log: %w", err)
	}
	return l, nil
}

// Entries are keyed by their 8-byte big-endian sequence number; the acknowledged mark sorts
// after them all.
var (
	ackedKey = []byte{0xff, 'a', 'c', 'k', 'e', 'd'}
	entries  = &util.Range{Start: key(0), Limit: []byte{0xff}}
)

func key(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// Append writes e durably and returns its sequence number. The caller serves only after it
// returns nil.
func (l *Log) Append(e records.FetchEntry) (uint64, error) {
	return l.AppendAll(e)
}

// AppendAll writes es durably in one synced batch, with consecutive sequence numbers, and
// returns the first one: all of them are written or none is.
func (l *Log) AppendAll(es ...records.FetchEntry) (uint64, error) {
	if len(es) == 0 {
		return 0, errors.New("fetch log: nothing to append")
	}
	raws := make([][]byte, len(es))
	for i := range es {
		raw, err := json.Marshal(es[i])
		if err != nil {
			return 0, err
		}
		raws[i] = raw
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, errors.New("fetch log is closed")
	}
	if l.broken != nil {
		l.mu.Unlock()
		return 0, l.broken
	}
	if l.next-1-l.acked+uint64(len(es)) > MaxBacklog {
		l.mu.Unlock()
		return 0, ErrBacklog
	}
	// One queue element: whoever writes next writes all of it in its batch.
	q := &queued{seq: l.next, raws: raws, done: make(chan error, 1)}
	l.next += uint64(len(raws))
	l.queue = append(l.queue, q)
	lead := !l.writing
	l.writing = true
	l.mu.Unlock()
	if lead {
		l.writeQueued()
	}
	if err := <-q.done; err != nil {
		return 0, err
	}
	return q.seq, nil
}

// writeQueued writes the queue in synced batches until it is empty.
func (l *Log) writeQueued() {
	for {
		l.mu.Lock()
		batch := l.queue
		l.queue = nil
		if len(batch) == 0 {
			l.writing = false
			l.mu.Unlock()
			return
		}
		closed := l.closed
		l.mu.Unlock()
		err := errors.New("fetch log is closed")
		if !closed {
			var b leveldb.Batch
			for _, q := range batch {
				for i, raw := range q.raws {
					b.Put(key(q.seq+uint64(i)), raw)
				}
			}
			if err = l.db.Write(&b, sync_); err != nil {
				err = fmt.Errorf("write fetch log: %w", err)
			}
		}
		if err != nil {
			l.mu.Lock()
			l.broken = err // these sequence numbers are lost: accept nothing after them
			l.mu.Unlock()
		}
		for _, q := range batch {
			q.done <- err
		}
	}
}

// Pending returns up to max entries after seq, in order.
func (l *Log) Pending(after uint64, max int) ([]Entry, error) {
	it := l.db.NewIterator(&util.Range{Start: key(after + 1), Limit: entries.Limit}, nil)
	defer it.Release()
	var out []Entry
	for len(out) < max && it.Next() {
		var e Entry
		e.Seq = binary.BigEndian.Uint64(it.Key())
		if err := json.Unmarshal(it.Value(), &e.FetchEntry); err != nil {
			return nil, fmt.Errorf("fetch log entry %d: %w", e.Seq, err)
		}
		out = append(out, e)
	}
	return out, it.Error()
}

// Ack deletes the entries up to seq: the ledger holds them.
func (l *Log) Ack(seq uint64) error {
	l.mu.Lock()
	from := l.acked + 1
	if seq >= l.next {
		seq = l.next - 1
	}
	l.mu.Unlock()
	if seq < from {
		return nil
	}
	var b leveldb.Batch
	for s := from; s <= seq; s++ {
		b.Delete(key(s))
	}
	b.Put(ackedKey, key(seq))
	if err := l.db.Write(&b, sync_); err != nil {
		return fmt.Errorf("trim fetch log: %w", err)
	}
	l.mu.Lock()
	if seq > l.acked {
		l.acked = seq
	}
	l.mu.Unlock()
	return nil
}

// Resume moves the log past what the ledger already holds (head, the last sequence number of
// this node's log on the ledger): after a crash between a commit and its Ack, or with a log
// that was lost, numbering continues where the ledger expects it.
func (l *Log) Resume(head uint64) error {
	if err := l.Ack(head); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.next <= head {
		l.next, l.acked = head+1, head
	}
	return nil
}

// Backlog is the number of entries not yet on the ledger.
func (l *Log) Backlog() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next - 1 - l.acked
}

// Close closes the log; later Appends fail.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	return l.db.Close()
}
