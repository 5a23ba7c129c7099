package webhook

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
)

// heldBody is a request body that, once read, waits for release before it gives its bytes: a review being
// read while others arrive.
type heldBody struct {
	r       io.Reader
	reading chan struct{} // closed at the first Read
	release <-chan struct{}
	once    sync.Once
}

func (b *heldBody) Read(p []byte) (int, error) {
	b.once.Do(func() { close(b.reading) })
	<-b.release
	return b.r.Read(p)
}

func (*heldBody) Close() error { return nil }

// review is the AdmissionReview of a CREATE (or, with op, another operation) of simplePod, with uid.
func review(t *testing.T, uid types.UID, op admissionv1.Operation) []byte {
	t.Helper()
	req := admissionv1.AdmissionRequest{
		UID: uid, Kind: podGVK("", "Pod"), Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: "payments", Name: "api-7d9f8-x2x4k", Operation: op,
	}
	if op == admissionv1.Delete {
		req.OldObject = runtime.RawExtension{Raw: podJSON(t, simplePod())}
	} else {
		req.Object = runtime.RawExtension{Raw: podJSON(t, simplePod())}
	}
	return reviewJSON(t, req)
}

// serveReview posts body to s and returns the response of the review; an answer that is not a review fails
// the test (from any goroutine) and returns a zero response.
func serveReview(t *testing.T, s *Server, body io.Reader) *admissionv1.AdmissionResponse {
	t.Helper()
	r := httptest.NewRequestWithContext(log.IntoContext(t.Context(), testr.New(t)), http.MethodPost, Path, body)
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	var got admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusOK || got.Response == nil {
		t.Errorf("ServeHTTP answered %d %q (%v), want 200 and a review", w.Code, w.Body, err)
		return &admissionv1.AdmissionResponse{}
	}
	return got.Response
}

// TestServerShedsOverTheCap: while MaxInFlight reviews are being read, every further review is answered at
// once, allowed with its own uid, not observed, and counted dropped; once a slot is free, reviews are served
// again.
func TestServerShedsOverTheCap(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	obs := newObserver(10)
	s := &Server{Handler: New(obs, m), Metrics: m, MaxInFlight: 2}

	release := make(chan struct{})
	var held sync.WaitGroup
	for _, uid := range []types.UID{"held-1", "held-2"} {
		body := &heldBody{r: bytes.NewReader(review(t, uid, admissionv1.Create)), reading: make(chan struct{}), release: release}
		held.Go(func() {
			if resp := serveReview(t, s, body); !resp.Allowed || resp.UID != uid {
				t.Errorf("held review answered %+v, want allowed with uid %s", resp, uid)
			}
		})
		<-body.reading
	}

	shed := []struct {
		uid types.UID
		op  admissionv1.Operation
	}{{"shed-1", admissionv1.Create}, {"shed-2", admissionv1.Delete}, {"shed-3", "FORGED"}}
	for _, r := range shed {
		if resp := serveReview(t, s, bytes.NewReader(review(t, r.uid, r.op))); !resp.Allowed || resp.UID != r.uid {
			t.Errorf("review over the cap answered %+v, want allowed with uid %s", resp, r.uid)
		}
	}
	if got := obs.drain(); len(got) != 0 {
		t.Errorf("observed %d pods over the cap, want none", len(got))
	}

	close(release)
	held.Wait()
	if resp := serveReview(t, s, bytes.NewReader(review(t, "after", admissionv1.Create))); !resp.Allowed || resp.UID != "after" {
		t.Errorf("review after the burst answered %+v", resp)
	}
	if got := len(obs.drain()); got != 3 {
		t.Errorf("observed %d pods, want the 2 held and the one after", got)
	}
	want := map[series]float64{
		{"CREATE", metrics.AdmissionObserved}: 3,
		{"CREATE", metrics.AdmissionDropped}:  1,
		{"DELETE", metrics.AdmissionDropped}:  1,
		{"other", metrics.AdmissionDropped}:   1,
	}
	if diff := cmp.Diff(want, admissionCounts(t, reg)); diff != "" {
		t.Errorf("deptracker_admission_requests_total (-want +got):\n%s", diff)
	}
}

// TestServerDefaultCap: without MaxInFlight, DefaultMaxInFlight reviews are served at once and the next is
// shed.
func TestServerDefaultCap(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	s := &Server{Handler: New(newObserver(DefaultMaxInFlight), m), Metrics: m}
	release := make(chan struct{})
	var held sync.WaitGroup
	for range DefaultMaxInFlight {
		body := &heldBody{r: bytes.NewReader(review(t, "held", admissionv1.Create)), reading: make(chan struct{}), release: release}
		held.Go(func() { serveReview(t, s, body) })
		<-body.reading
	}
	serveReview(t, s, bytes.NewReader(review(t, "over", admissionv1.Create)))
	close(release)
	held.Wait()
	want := map[series]float64{{"CREATE", metrics.AdmissionObserved}: DefaultMaxInFlight, {"CREATE", metrics.AdmissionDropped}: 1}
	if diff := cmp.Diff(want, admissionCounts(t, reg)); diff != "" {
		t.Errorf("deptracker_admission_requests_total (-want +got):\n%s", diff)
	}
}

func TestPeekReview(t *testing.T) {
	apiServer := string(review(t, "705ab4f5-6393-11e8-b7cc-42010a800002", admissionv1.Create))
	tests := []struct {
		name    string
		body    string
		wantUID types.UID
		wantOp  string
	}{
		{"as the API server writes it", apiServer, "705ab4f5-6393-11e8-b7cc-42010a800002", "CREATE"},
		{"operation first", `{"request":{"operation":"DELETE","uid":"u"}}`, "u", "DELETE"},
		{"envelope after the request", `{"request":{"uid":"u","operation":"CREATE"},"kind":"AdmissionReview"}`, "u", "CREATE"},
		{"objects and arrays skipped", `{"kind":{"a":[1,{"b":2}]},"request":{"kind":{"group":""},"uid":"u","operation":"CREATE"}}`, "u", "CREATE"},
		{"no operation", `{"request":{"uid":"u","name":"p"}}`, "u", ""},
		{"uid past the bytes read", `{"request":{"name":"` + strings.Repeat("a", peekBytes) + `","uid":"u"}}`, "", ""},
		{"uid not a string", `{"request":{"uid":5,"operation":"CREATE"}}`, "", ""},
		{"request not an object", `{"request":"x"}`, "", ""},
		{"request null", `{"request":null}`, "", ""},
		{"no request", `{"kind":"AdmissionReview"}`, "", ""},
		{"not an object", `["request"]`, "", ""},
		{"not JSON", `request: {uid: u}`, "", ""},
		{"empty", ``, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid, op := peekReview(io.LimitReader(strings.NewReader(tt.body), peekBytes))
			if diff := cmp.Diff([]string{string(tt.wantUID), tt.wantOp}, []string{string(uid), op}); diff != "" {
				t.Errorf("uid and operation (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzPeekReview: peeking at whatever a shed review holds ends; and any review that decodes, encoded again the
// way the API server encodes it (fields in the struct's order), yields its uid and operation when they lie
// within the bytes read.
func FuzzPeekReview(f *testing.F) {
	f.Add(`{"request":{"uid":"u","operation":"CREATE"}}`)
	f.Add(`{"request":{"kind":{"a":[1,{"b":2}]},"uid":"u","operation":"DELETE","userInfo":{"username":"x"}}}`)
	f.Add(`{"request":{"uid":"u"`)
	f.Fuzz(func(t *testing.T, body string) {
		peekReview(io.LimitReader(strings.NewReader(body), peekBytes))
		var review admissionv1.AdmissionReview
		if json.Unmarshal([]byte(body), &review) != nil || review.Request == nil {
			return
		}
		encoded, err := json.Marshal(review)
		if err != nil || len(encoded) > peekBytes {
			return
		}
		uid, op := peekReview(io.LimitReader(bytes.NewReader(encoded), peekBytes))
		if uid != review.Request.UID || op != string(review.Request.Operation) {
			t.Errorf("peeked %q %q in %s, want %q %q", uid, op, encoded, review.Request.UID, review.Request.Operation)
		}
	})
}

// TestHandlerStandby: until the replica leads, reviews are answered allowed, counted standby and not observed
// (its tracker does not run); once it leads, they are observed.
func TestHandlerStandby(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	obs := newObserver(10)
	h := New(obs, metrics.New(reg))
	elected := make(chan struct{})
	h.Elected = elected
	handle := func(op admissionv1.Operation) {
		t.Helper()
		var req admission.Request
		if err := json.Unmarshal(review(t, "u", op), &admissionv1.AdmissionReview{Request: &req.AdmissionRequest}); err != nil {
			t.Fatal(err)
		}
		if resp := h.Handle(t.Context(), req); !resp.Allowed {
			t.Errorf("%s answered %+v, want allowed", op, resp.AdmissionResponse)
		}
	}
	handle(admissionv1.Create)
	handle(admissionv1.Delete)
	if got := obs.drain(); len(got) != 0 {
		t.Errorf("a standby observed %d pods, want none", len(got))
	}
	close(elected)
	handle(admissionv1.Create)
	if got := obs.drain(); len(got) != 1 {
		t.Errorf("the leader observed %d pods, want 1", len(got))
	}
	want := map[series]float64{
		{"CREATE", metrics.AdmissionStandby}:  1,
		{"DELETE", metrics.AdmissionStandby}:  1,
		{"CREATE", metrics.AdmissionObserved}: 1,
	}
	if diff := cmp.Diff(want, admissionCounts(t, reg)); diff != "" {
		t.Errorf("deptracker_admission_requests_total (-want +got):\n%s", diff)
	}
}
