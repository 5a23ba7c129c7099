package main

import (
	"bytes"
	"encoding/json"
	stdlog "log"
	"os"
	"testing"

	"github.com/go-logr/logr/funcr"
)

// TestStdlogRouted: a line of the standard library's log package (net/http's servers without an ErrorLog, the
// metrics server) becomes one entry of the logger stdlog, without its trailing newline.
func TestStdlogRouted(t *testing.T) {
	var buf bytes.Buffer
	log := funcr.NewJSON(func(obj string) { buf.WriteString(obj + "\n") }, funcr.Options{})
	routeLogs(log)
	defer stdlog.SetOutput(os.Stderr)
	stdlog.Print("http: TLS handshake error from 127.0.0.1:1: EOF")
	var entry map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &entry); err != nil {
		t.Fatalf("not one JSON entry: %q (%v)", buf.String(), err)
	}
	if entry["logger"] != "stdlog" || entry["line"] != "http: TLS handshake error from 127.0.0.1:1: EOF" {
		t.Errorf("entry %v", entry)
	}
}
