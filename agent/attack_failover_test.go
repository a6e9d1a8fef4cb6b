package agent_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/contracts/records"
)

// sickNode is a node API that answers every request 503, as a node that is starting, catching up
// or stalled does, and counts the requests it got.
func sickNode(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":{"code":"stalled","message":"no block committed for 1m"}}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// refusedAddr is a loopback address nothing listens on: connecting to it is refused.
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// TestAttackUnhealthyNodesDoNotTrapTheClient: nodes that answer 503 forever cost a request one
// pass over the node list and a Send its CommitWait, no more; a healthy node in the list is
// found and kept, and the signer's nonce is right afterwards.
func TestAttackUnhealthyNodesDoNotTrapTheClient(t *testing.T) {
	w := startWorld(t)
	sick1, n1 := sickNode(t)
	sick2, n2 := sickNode(t)

	allSick := client.New(sick1.URL + "," + sick2.URL)
	_, err := allSick.Status(w.ctx)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable {
		t.Fatalf("status from two sick nodes: %v", err)
	}
	if n1.Load() != 1 || n2.Load() != 1 {
		t.Fatalf("one status call asked the sick nodes %d and %d times, want once each", n1.Load(), n2.Load())
	}

	// A sick node first in the list is passed over, and the client stays with the healthy one.
	mixed := client.New(sick1.URL + "," + w.node.APIAddr)
	for range 3 {
		if _, err := mixed.Status(w.ctx); err != nil {
			t.Fatalf("status with a healthy node in the list: %v", err)
		}
	}
	if n1.Load() != 2 {
		t.Fatalf("the sick node was asked %d more times after the healthy one answered", n1.Load()-2)
	}

	// A Send through a node that refuses every submission with 503 (reads pass) ends with an
	// error within the signer's bound, the tx submitted again and again meanwhile.
	u, _ := url.Parse("http://" + strings.TrimPrefix(w.node.APIAddr, "http://"))
	proxy := httputil.NewSingleHostReverseProxy(u)
	var submissions atomic.Int64
	busy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/txs" {
			submissions.Add(1)
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(rw, r)
	}))
	t.Cleanup(busy.Close)
	patient := w.keys["patient"]
	s := &client.Signer{C: client.New(busy.URL), ChainID: w.node.ChainID, Key: patient.Key, CommitWait: client.ResendAfter + time.Second}
	msg := records.SettingsMsg{Settings: records.Settings{EmergencyOptOut: false}}
	if _, err := s.Send(w.ctx, records.TypeSettings, msg); err == nil {
		t.Fatal("a tx was reported committed by a node that refuses every submission")
	}
	if submissions.Load() < 2 {
		t.Fatalf("the tx was submitted %d times: not re-sent", submissions.Load())
	}
	// Through a healthy node, the same signer sends with the account's right nonce.
	before, _, err := w.c.Account(w.ctx, patient.Address(), false)
	if err != nil {
		t.Fatal(err)
	}
	s.C = mixed // the signer believes its tx may be in flight: it must re-read the nonce
	if _, err := s.Send(w.ctx, records.TypeSettings, msg); err != nil {
		t.Fatalf("send after the sick nodes: %v", err)
	}
	after, _, err := w.c.Account(w.ctx, patient.Address(), false)
	if err != nil {
		t.Fatal(err)
	}
	if after.Nonce != before.Nonce+1 {
		t.Fatalf("nonce went from %d to %d, want one step", before.Nonce, after.Nonce)
	}
}

// TestAttackSignedRequestNotReplayedAcrossNodes: a signed request (single use, bound to one
// host) goes to the next node only when the first refused the connection. A node that took the
// connection and dropped it may have acted on the request, so the client reports the failure
// instead of asking another node; an unsigned read does move on.
func TestAttackSignedRequestNotReplayedAcrossNodes(t *testing.T) {
	w := startWorld(t)
	dropper := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		conn, _, err := rw.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // read the request, answer nothing
		}
	}))
	t.Cleanup(dropper.Close)
	u, _ := url.Parse("http://" + strings.TrimPrefix(w.node.APIAddr, "http://"))
	proxy := httputil.NewSingleHostReverseProxy(u)
	var blobPuts atomic.Int64
	counted := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/blobs/") {
			blobPuts.Add(1)
		}
		proxy.ServeHTTP(rw, r)
	}))
	t.Cleanup(counted.Close)
	doctor := w.keys["doctor"]
	ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
	defer cancel()

	c := client.New(dropper.URL + "," + counted.URL)
	if _, err := c.PutBlob(ctx, doctor, []byte("ciphertext one")); err == nil {
		t.Fatal("a signed upload dropped by the first node was reported stored")
	}
	if blobPuts.Load() != 0 {
		t.Fatalf("a signed upload the first node may have seen was sent to the next one too")
	}
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("an unsigned read did not move past the dropping node: %v", err)
	}

	c = client.New(refusedAddr(t) + "," + counted.URL)
	if _, err := c.PutBlob(ctx, doctor, []byte("ciphertext two")); err != nil {
		t.Fatalf("a signed upload refused by the first node's host did not reach the second: %v", err)
	}
	if blobPuts.Load() != 1 {
		t.Fatalf("%d uploads reached the second node, want 1", blobPuts.Load())
	}
}
