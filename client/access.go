package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/medchain/medchain/contracts/records"
	"github.com/medchain/medchain/tx"
)

// AccessActive reports whether requester's access event (patient, access) still lets it read
// version of record (0 = the latest), decided by the node against its latest state.
func (c *Client) AccessActive(ctx context.Context, patient tx.Address, access uint64, requester tx.Address, record string, version uint32) (bool, error) {
	q := url.Values{"requester": {string(requester)}, "record": {record}, "version": {strconv.FormatUint(uint64(version), 10)}}
	var ok bool
	return ok, c.do(ctx, http.MethodGet, patientPath(patient, fmt.Sprintf("access/%d/active", access))+"?"+q.Encode(), nil, &ok)
}

// Fetches returns a patient's committed fetch log entries: who was served (or refused) the
// ciphertext of which record, by which node.
func (c *Client) Fetches(ctx context.Context, patient tx.Address) ([]records.FetchEvent, error) {
	return listAll[records.FetchEvent](ctx, c, patientPath(patient, "fetches"), nil)
}
