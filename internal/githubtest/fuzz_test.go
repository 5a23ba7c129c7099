package githubtest

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzDecodeRecord checks that the validator never panics, and that a body it accepts survives a round trip
// through record.Record unchanged and is accepted again.
func FuzzDecodeRecord(f *testing.F) {
	valid, err := json.Marshal(validBody())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte(`{"name":"a","digest":"sha256:` + testDigest[7:] + `","status":"deployed","logical_environment":"p","deployment_name":""}`))
	f.Add([]byte(`{"tags":{"a":null},"runtime_risks":[null]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"name":"a","digest":"sha256:` + testDigest[7:] + `","status":"deployed","logical_environment":"p","deployment_name":"d","tags":{},"runtime_risks":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, violations, err := decodeRecord(body)
		if err != nil || len(violations) > 0 {
			return
		}
		rec := req.record()
		again, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		req2, violations, err := decodeRecord(again)
		if err != nil || len(violations) > 0 {
			t.Fatalf("accepted %s, but not its round trip %s: %v %q", body, again, err, violations)
		}
		if diff := cmp.Diff(rec, req2.record()); diff != "" {
			t.Errorf("round trip (-first +second):\n%s", diff)
		}
	})
}
