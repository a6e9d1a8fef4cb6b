package agent

import (
	"cmp"
	"context"
	"slices"

	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/tx"
)

// MaxTimelineRecords bounds the records metadata a timeline lists to sort them.
const MaxTimelineRecords = 100_000

// Timeline returns one page of the patient's active records this account may read, newest
// first by the time the ledger anchored them: count records (1..MaxSearchCount, and at most
// MaxSearchBytes of ciphertext) after skip.
// It lists the records' metadata (nothing is decrypted to sort them) and asks access for and
// opens only the page's records. total is how many active records the listing holds (the page's
// denied categories are left out of page, not of total).
func (a *Agent) Timeline(ctx context.Context, patient tx.Address, skip, count int) (page []Plain, total int, err error) {
	count = min(max(count, 1), MaxSearchCount)
	var all []records.Record
	cursor := ""
	for len(all) < MaxTimelineRecords {
		recs, next, err := a.node.PatientRecordsPage(ctx, patient, cursor, MaxSearchCount)
		if err != nil {
			return nil, 0, notFound(err)
		}
		for _, r := range recs {
			if r.Status == records.StatusActive {
				all = append(all, r)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	slices.SortFunc(all, func(x, y records.Record) int {
		if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(x.ID, y.ID)
	})
	if skip < 0 || skip >= len(all) {
		return nil, len(all), nil
	}
	window := all[skip:min(skip+count, len(all))]
	var size int64
	for i := range window { // at most MaxSearchBytes of ciphertext, and at least one record
		if size += window[i].Size; i > 0 && size > MaxSearchBytes {
			window = window[:i]
			break
		}
	}
	page, err = a.openChosen(ctx, patient, window, nil)
	return page, len(all), err
}
