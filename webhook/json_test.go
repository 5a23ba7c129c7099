package webhook

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestUnmarshalAsEncodingJSON: the review decoder accepts and rejects what encoding/json does, and decodes
// what it accepts to the same view, for realistic reviews cut at every byte and with bytes replaced.
func TestUnmarshalAsEncodingJSON(t *testing.T) {
	var bodies [][]byte
	for _, req := range benchRequests(t) {
		body := reviewJSON(t, req)
		bodies = append(bodies, body)
		for i := range len(body) {
			bodies = append(bodies, body[:i])
		}
		rng := rand.New(rand.NewPCG(7, 11))
		for range 3000 {
			b := append([]byte(nil), body...)
			for range 1 + rng.IntN(3) {
				const junk = `{}[]",:\ 0aeE-+.tfnu`
				b[rng.IntN(len(b))] = junk[rng.IntN(len(junk))]
			}
			bodies = append(bodies, b)
		}
	}
	bodies = append(bodies, []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a\u00e9\ud83d\ude00","operation":"CREATE","object":{"metadata":{"name":"p","NAME":"q"},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`),
		[]byte(`{"request":{"object":null,"oldObject":{"spec":{"containers":null}}}}`),
		[]byte(`{"request":{"object":{"spec":{"containers":[{"name":1}]}}}}`),
		[]byte(`{"request":{"uid":"x"}} `),
		[]byte(" \n{\"kind\":\"AdmissionReview\"}\n"))
	mismatches := 0
	for _, b := range bodies {
		var want, got reviewView
		errWant, errGot := json.Unmarshal(b, &want), unmarshal(b, &got)
		if (errWant == nil) != (errGot == nil) || (errWant == nil && !reflect.DeepEqual(want, got)) {
			if mismatches++; mismatches <= 5 {
				t.Errorf("body %q:\nencoding/json: %v %+v\nunmarshal: %v %+v", b, errWant, want.Request, errGot, got.Request)
			}
		}
	}
	if mismatches > 0 {
		t.Errorf("%d of %d bodies decoded otherwise than encoding/json", mismatches, len(bodies))
	}
}
