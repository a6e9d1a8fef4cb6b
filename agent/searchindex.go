package agent

import (
	"sync"

	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/fhir"
)

// The search index. A search by content (code, date, status...) must look into resources, and a
// record's content is known only once it is opened (a key release and a ciphertext fetch, each
// logged). The agent keeps, in memory only and for the record versions it has opened or written,
// what the search parameters look at (fhir.Index: codings, identifiers, clinical dates): a later
// search skips, without opening them, the records whose index says they do not match, and opens
// the others, as always, to serve them. The index decides nothing alone: a record it says matches
// is opened (and matched again) like any other, so a revoked grant still stops the read, and the
// audit trail holds every record served.

// maxIndexed bounds the record versions the index keeps (a few hundred bytes each); the oldest
// go first.
const maxIndexed = 1 << 16

type indexKey struct {
	id      string
	version uint32
	hash    string // the ciphertext's: a key for exactly the content indexed
}

type searchIndex struct {
	mu    sync.Mutex
	byKey map[indexKey]*fhir.Index
	order []indexKey // insertion order, for eviction
	next  int        // the oldest entry once order is full
}

func indexKeyOf(rec *records.Record) indexKey {
	return indexKey{id: rec.ID, version: rec.Version, hash: string(rec.CiphertextHash)}
}

// add indexes the content of a record version.
func (x *searchIndex) add(id string, version uint32, hash []byte, raw []byte) {
	ix := fhir.IndexOf(raw)
	if ix == nil {
		return
	}
	k := indexKey{id: id, version: version, hash: string(hash)}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.byKey == nil {
		x.byKey = make(map[indexKey]*fhir.Index)
	}
	if _, ok := x.byKey[k]; ok {
		return
	}
	if len(x.order) < maxIndexed {
		x.order = append(x.order, k)
	} else {
		delete(x.byKey, x.order[x.next])
		x.order[x.next] = k
		x.next = (x.next + 1) % maxIndexed
	}
	x.byKey[k] = ix
}

// excludes reports whether the index knows rec's content and filter does not match it: the
// record need not be opened for this search.
func (x *searchIndex) excludes(rec *records.Record, filter *fhir.Search) bool {
	if filter == nil || !filter.NeedsContent() {
		return false
	}
	x.mu.Lock()
	ix, ok := x.byKey[indexKeyOf(rec)]
	x.mu.Unlock()
	return ok && !filter.MatchesIndex(ix)
}
