package agent

import (
	"reflect"
	"testing"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/keyring"
)

// TestWithPurposeSharesState: the copy WithPurpose makes (for break-glass reads) shares every
// piece of the agent's state; a field left out (the search index was) panics on the first read.
func TestWithPurposeSharesState(t *testing.T) {
	k, err := keyring.Generate("doctor")
	if err != nil {
		t.Fatal(err)
	}
	a := New(&client.Signer{C: client.New("http://127.0.0.1:1"), ChainID: "test", Key: k}, Config{})
	b := a.WithPurpose("ETREAT")
	if b.cfg.Purpose != "ETREAT" || a.cfg.Purpose != "TREAT" {
		t.Fatalf("purposes: copy %q, original %q", b.cfg.Purpose, a.cfg.Purpose)
	}
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for i := range va.NumField() {
		f := va.Type().Field(i)
		if f.Type.Kind() != reflect.Pointer {
			continue
		}
		if va.Field(i).Pointer() != vb.Field(i).Pointer() {
			t.Errorf("field %s is not shared by the copy", f.Name)
		}
	}
}
