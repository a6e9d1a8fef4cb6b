package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestAttackSyslogFlags: the audit collector's settings are checked before the agent starts:
// a CA file without certificates, a certificate without its key and a collector URL that is not
// tls, udp or tcp are usage errors.
func TestAttackSyslogFlags(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a certificate"), 0o600)
	for name, f := range map[string]syslogFlags{
		"ca without certificates": {url: "tls://127.0.0.1:6514", ca: junk},
		"cert without key":        {url: "tls://127.0.0.1:6514", cert: junk},
		"missing ca file":         {url: "tls://127.0.0.1:6514", ca: filepath.Join(dir, "absent.pem")},
		"http collector":          {url: "http://127.0.0.1:6514"},
		"tls settings over udp":   {url: "udp://127.0.0.1:514", cert: junk, key: junk},
	} {
		if fw, err := f.open(nil); err == nil {
			fw.Close(t.Context())
			t.Errorf("%s: accepted", name)
		} else if name != "missing ca file" && name != "tls settings over udp" && !errors.Is(err, errUsage) {
			t.Errorf("%s: %v is not a usage error", name, err)
		}
	}
	fw, err := (&syslogFlags{url: "udp://127.0.0.1:514"}).open(nil)
	if err != nil {
		t.Fatalf("a plain UDP collector: %v", err)
	}
	fw.Close(t.Context())
}
