package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/observation"
)

const (
	digestA = "sha256:1bb1e949e55dcefc6353e7b36c8897d2a107d8e8dca49d4e3c0ea8493fc0bc72"
	digestB = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

var fixedNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// bufferedObserver hands observations over the way the tracker does: a send on a buffered channel that
// never blocks and reports false when the buffer is full.
type bufferedObserver struct{ ch chan observation.Admission }

func newObserver(capacity int) *bufferedObserver {
	return &bufferedObserver{ch: make(chan observation.Admission, capacity)}
}

func (o *bufferedObserver) Observe(a observation.Admission) bool {
	select {
	case o.ch <- a:
		return true
	default:
		return false
	}
}

// drain returns what was observed so far.
func (o *bufferedObserver) drain() []observation.Admission {
	var got []observation.Admission
	for {
		select {
		case a := <-o.ch:
			got = append(got, a)
		default:
			return got
		}
	}
}

// series is one time series of deptracker_admission_requests_total.
type series struct{ operation, outcome string }

// admissionCounts reads deptracker_admission_requests_total from reg, every series of it.
func admissionCounts(t testing.TB, reg prometheus.Gatherer) map[series]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	got := map[series]float64{}
	for _, f := range families {
		if f.GetName() != "deptracker_admission_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var s series
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "operation":
					s.operation = l.GetValue()
				case "outcome":
					s.outcome = l.GetValue()
				}
			}
			got[s] = m.GetCounter().GetValue()
		}
	}
	return got
}

// podJSON encodes a pod as the API server puts it into a review.
func podJSON(t testing.TB, pod *corev1.Pod) []byte {
	t.Helper()
	pod.APIVersion, pod.Kind = "v1", "Pod"
	b, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// simplePod is a pod with an init container and two containers, as it looks at CREATE: no namespace in the
// object when the client left it to the request path.
func simplePod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "api-7d9f8-x2x4k", UID: "0c9b3a3e-8a47-4a4e-9d6f-5f1c6c1b9e01"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "migrate", Image: "ghcr.io/octo-org/migrate@" + digestB}},
			Containers: []corev1.Container{
				{Name: "server", Image: "ghcr.io/octo-org/api:v1.2.3@" + digestA},
				{Name: "proxy", Image: "nginx"},
			},
		},
	}
}

func podGVK(group, kind string) metav1.GroupVersionKind {
	return metav1.GroupVersionKind{Group: group, Version: "v1", Kind: kind}
}

func TestHandler(t *testing.T) {
	created := podJSON(t, simplePod())
	running := simplePod()
	running.Namespace = "payments"
	running.Status = corev1.PodStatus{Phase: corev1.PodRunning}
	deleted := podJSON(t, running)
	other := simplePod()
	other.Name, other.Namespace, other.UID = "other", "elsewhere", "other-uid"
	otherJSON := podJSON(t, other)
	noContainers := simplePod()
	noContainers.Spec.Containers = nil

	wantContainers := []observation.Container{
		{Name: "migrate", Image: "ghcr.io/octo-org/migrate@" + digestB, Init: true},
		{Name: "server", Image: "ghcr.io/octo-org/api:v1.2.3@" + digestA},
		{Name: "proxy", Image: "nginx"},
	}
	request := func(op admissionv1.Operation, object, oldObject []byte) admission.Request {
		r := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID:       "review-uid",
			Kind:      podGVK("", "Pod"),
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: "payments",
			Name:      "api-7d9f8-x2x4k",
			Operation: op,
		}}
		r.Object.Raw, r.OldObject.Raw = object, oldObject
		return r
	}
	with := func(r admission.Request, f func(*admission.Request)) admission.Request { f(&r); return r }

	tests := []struct {
		name     string
		req      admission.Request
		capacity int // of the observer's buffer
		want     []observation.Admission
		counts   map[series]float64
	}{
		{
			name:     "CREATE",
			req:      request(admissionv1.Create, created, nil),
			capacity: 1,
			want: []observation.Admission{{
				Operation: observation.Create, Namespace: "payments", Name: "api-7d9f8-x2x4k",
				UID: "0c9b3a3e-8a47-4a4e-9d6f-5f1c6c1b9e01", Containers: wantContainers, Time: fixedNow,
			}},
			counts: map[series]float64{{"CREATE", metrics.AdmissionObserved}: 1},
		},
		{
			name: "CREATE with the name only in the request",
			req: request(admissionv1.Create, podJSON(t, func() *corev1.Pod {
				p := simplePod()
				p.Name, p.GenerateName = "", "api-7d9f8-"
				return p
			}()), nil),
			capacity: 1,
			want: []observation.Admission{{
				Operation: observation.Create, Namespace: "payments", Name: "api-7d9f8-x2x4k",
				UID: "0c9b3a3e-8a47-4a4e-9d6f-5f1c6c1b9e01", Containers: wantContainers, Time: fixedNow,
			}},
			counts: map[series]float64{{"CREATE", metrics.AdmissionObserved}: 1},
		},
		{
			name:     "identity comes from the pod, not the request",
			req:      request(admissionv1.Create, otherJSON, nil),
			capacity: 1,
			want: []observation.Admission{{
				Operation: observation.Create, Namespace: "elsewhere", Name: "other",
				UID: "other-uid", Containers: wantContainers, Time: fixedNow,
			}},
			counts: map[series]float64{{"CREATE", metrics.AdmissionObserved}: 1},
		},
		{
			name:     "DELETE reads oldObject",
			req:      request(admissionv1.Delete, nil, deleted),
			capacity: 1,
			want: []observation.Admission{{
				Operation: observation.Delete, Namespace: "payments", Name: "api-7d9f8-x2x4k",
				UID: "0c9b3a3e-8a47-4a4e-9d6f-5f1c6c1b9e01", Containers: wantContainers, Time: fixedNow,
			}},
			counts: map[series]float64{{"DELETE", metrics.AdmissionObserved}: 1},
		},
		{
			name:     "DELETE ignores object",
			req:      request(admissionv1.Delete, otherJSON, deleted),
			capacity: 1,
			want: []observation.Admission{{
				Operation: observation.Delete, Namespace: "payments", Name: "api-7d9f8-x2x4k",
				UID: "0c9b3a3e-8a47-4a4e-9d6f-5f1c6c1b9e01", Containers: wantContainers, Time: fixedNow,
			}},
			counts: map[series]float64{{"DELETE", metrics.AdmissionObserved}: 1},
		},
		{
			name:     "DELETE without oldObject",
			req:      request(admissionv1.Delete, created, nil),
			capacity: 1,
			counts:   map[series]float64{{"DELETE", metrics.AdmissionUndecodable}: 1},
		},
		{
			name:     "CREATE dry run",
			req:      with(request(admissionv1.Create, created, nil), func(r *admission.Request) { r.DryRun = ptr.To(true) }),
			capacity: 1,
			counts:   map[series]float64{{"CREATE", metrics.AdmissionDryRun}: 1},
		},
		{
			name:     "DELETE dry run",
			req:      with(request(admissionv1.Delete, nil, deleted), func(r *admission.Request) { r.DryRun = ptr.To(true) }),
			capacity: 1,
			counts:   map[series]float64{{"DELETE", metrics.AdmissionDryRun}: 1},
		},
		{
			name:     "dry run false is observed",
			req:      with(request(admissionv1.Create, created, nil), func(r *admission.Request) { r.DryRun = ptr.To(false) }),
			capacity: 1,
			want: []observation.Admission{{
				Operation: observation.Create, Namespace: "payments", Name: "api-7d9f8-x2x4k",
				UID: "0c9b3a3e-8a47-4a4e-9d6f-5f1c6c1b9e01", Containers: wantContainers, Time: fixedNow,
			}},
			counts: map[series]float64{{"CREATE", metrics.AdmissionObserved}: 1},
		},
		{
			name: "non-pod resource",
			req: with(request(admissionv1.Create, []byte(`{"kind":"Deployment"}`), nil), func(r *admission.Request) {
				r.Kind, r.Resource = podGVK("apps", "Deployment"), metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
			}),
			capacity: 1,
			counts:   map[series]float64{{"CREATE", metrics.AdmissionIgnored}: 1},
		},
		{
			name:     "Pod kind of another group",
			req:      with(request(admissionv1.Create, created, nil), func(r *admission.Request) { r.Kind = podGVK("metrics.k8s.io", "Pod") }),
			capacity: 1,
			counts:   map[series]float64{{"CREATE", metrics.AdmissionIgnored}: 1},
		},
		{
			name: "subresource",
			req: with(request(admissionv1.Update, created, created), func(r *admission.Request) {
				r.SubResource = "ephemeralcontainers"
			}),
			capacity: 1,
			counts:   map[series]float64{{"UPDATE", metrics.AdmissionIgnored}: 1},
		},
		{
			name: "CREATE of a subresource",
			req: with(request(admissionv1.Create, created, nil), func(r *admission.Request) {
				r.SubResource = "binding"
			}),
			capacity: 1,
			counts:   map[series]float64{{"CREATE", metrics.AdmissionIgnored}: 1},
		},
		{
			name:     "UPDATE",
			req:      request(admissionv1.Update, created, deleted),
			capacity: 1,
			counts:   map[series]float64{{"UPDATE", metrics.AdmissionIgnored}: 1},
		},
		{
			name:     "CONNECT",
			req:      request(admissionv1.Connect, nil, nil),
			capacity: 1,
			counts:   map[series]float64{{"CONNECT", metrics.AdmissionIgnored}: 1},
		},
		{
			name:     "object is not JSON",
			req:      request(admissionv1.Create, []byte("\x00\x01protobuf"), nil),
			capacity: 1,
			counts:   map[series]float64{{"CREATE", metrics.AdmissionUndecodable}: 1},
		},
		{
			name:     "object of the wrong shape",
			req:      request(admissionv1.Create, []byte(`{"spec":{"containers":"nginx"}}`), nil),
			capacity: 1,
			counts:   map[series]float64{{"CREATE", metrics.AdmissionUndecodable}: 1},
		},
		{
			name:     "no object",
			req:      request(admissionv1.Create, nil, nil),
			capacity: 1,
			counts:   map[series]float64{{"CREATE", metrics.AdmissionUndecodable}: 1},
		},
		{
			name:     "pod without containers",
			req:      request(admissionv1.Create, podJSON(t, noContainers), nil),
			capacity: 1,
			counts:   map[series]float64{{"CREATE", metrics.AdmissionUndecodable}: 1},
		},
		{
			name:     "forged operation is counted as other, not as a new series",
			req:      request(admissionv1.Operation("FORGED-1234"), created, nil),
			capacity: 1,
			counts:   map[series]float64{{"other", metrics.AdmissionIgnored}: 1},
		},
		{
			name:     "full buffer drops the observation",
			req:      request(admissionv1.Create, created, nil),
			capacity: 0,
			counts:   map[series]float64{{"CREATE", metrics.AdmissionDropped}: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			obs := newObserver(tt.capacity)
			h := New(obs, metrics.New(reg))
			h.now = func() time.Time { return fixedNow }
			ctx := log.IntoContext(t.Context(), testr.New(t))

			resp := h.Handle(ctx, tt.req)

			if !resp.Allowed || len(resp.Patches) != 0 || resp.PatchType != nil {
				t.Errorf("Handle = %+v, want allowed without patches", resp.AdmissionResponse)
			}
			if diff := cmp.Diff(tt.want, obs.drain()); diff != "" {
				t.Errorf("observed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.counts, admissionCounts(t, reg)); diff != "" {
				t.Errorf("deptracker_admission_requests_total (-want +got):\n%s", diff)
			}
		})
	}
	// The same requests in reviews through the Server, which decodes each review and its pod in one pass.
	for _, tt := range tests {
		t.Run(tt.name+"/through the server", func(t *testing.T) {
			body, err := json.Marshal(admissionv1.AdmissionReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
				Request:  &tt.req.AdmissionRequest,
			})
			if err != nil {
				t.Skipf("the request does not fit in a JSON review: %v", err)
			}
			reg := prometheus.NewPedanticRegistry()
			obs := newObserver(tt.capacity)
			h := New(obs, metrics.New(reg))
			h.now = func() time.Time { return fixedNow }
			r := httptest.NewRequestWithContext(log.IntoContext(t.Context(), testr.New(t)), http.MethodPost, Path, bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()

			(&Server{Handler: h}).ServeHTTP(w, r)

			var got admissionv1.AdmissionReview
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Response == nil || !got.Response.Allowed ||
				got.Response.UID != tt.req.UID {
				t.Errorf("response %s (%v), want allowed for %s", w.Body, err, tt.req.UID)
			}
			if diff := cmp.Diff(tt.want, obs.drain()); diff != "" {
				t.Errorf("observed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.counts, admissionCounts(t, reg)); diff != "" {
				t.Errorf("deptracker_admission_requests_total (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReviewView checks that the single pass decodes the pods of a review where the raw objects would be.
func TestReviewView(t *testing.T) {
	body := reviewJSON(t, admissionv1.AdmissionRequest{
		UID: "u", Kind: podGVK("", "Pod"), Operation: admissionv1.Delete, Namespace: "payments",
		Object:    runtime.RawExtension{Raw: []byte(`null`)},
		OldObject: runtime.RawExtension{Raw: podJSON(t, simplePod())},
	})
	var got reviewView
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Request == nil || got.Request.UID != "u" || got.Request.Namespace != "payments" || got.Request.Operation != admissionv1.Delete {
		t.Fatalf("request = %+v, want the review's", got.Request)
	}
	if got.Request.Object != nil {
		t.Errorf("object = %+v, want nil (null)", got.Request.Object)
	}
	if got.Request.OldObject == nil || got.Request.OldObject.Metadata.Name != "api-7d9f8-x2x4k" || len(got.Request.OldObject.Spec.Containers) != 2 {
		t.Errorf("oldObject = %+v, want the pod decoded", got.Request.OldObject)
	}
	if got.Request.AdmissionRequest.Object.Raw != nil || got.Request.AdmissionRequest.OldObject.Raw != nil {
		t.Error("the raw objects were copied as well")
	}
}

// generalHandler hides the Handler's type from the Server, which then decodes reviews the general way.
type generalHandler struct{ admission.Handler }

// FuzzSinglePass checks that whatever arrives, the Server's single pass answers, observes, counts and logs as
// the general way (an AdmissionReview, then the pod from its raw bytes) does.
func FuzzSinglePass(f *testing.F) {
	for _, req := range []admissionv1.AdmissionRequest{
		{UID: "u", Kind: podGVK("", "Pod"), Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: podJSON(f, simplePod())}},
		{UID: "u", Kind: podGVK("", "Pod"), Operation: admissionv1.Delete, OldObject: runtime.RawExtension{Raw: podJSON(f, benchPod())}},
		{UID: "u", Kind: podGVK("", "Pod"), Operation: admissionv1.Update, Object: runtime.RawExtension{Raw: []byte(`{"spec":5}`)}},
		{UID: "u", Kind: podGVK("", "Pod"), Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte(`{"spec":{"containers":"x"}}`)}},
		{UID: "u", Kind: podGVK("", "Pod"), Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte(`[]`)}, DryRun: ptr.To(false)},
		{UID: "u", Kind: podGVK("apps", "Deployment"), Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte(`{"spec":{"template":{}}}`)}},
	} {
		f.Add(reviewJSON(f, req))
	}
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE","object":{"metadata":{"name":5},"spec":{"containers":[{}]}},"userInfo":{"groups":"x"}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"DELETE","oldObject":{"spec":{"containers":[{"name":"a","image":"b"}]}},"object":{"spec":[]}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","Object":{"spec":{"containers":[{"Name":"a"}]}},"KIND":{"kind":"Pod"},"operation":"CREATE","object":null}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`))
	type outcome struct {
		code     int
		body     string
		observed []observation.Admission
		counts   map[series]float64
	}
	serve := func(t *testing.T, body []byte, general bool) outcome {
		reg := prometheus.NewPedanticRegistry()
		m := metrics.New(reg)
		obs := newObserver(1)
		h := New(obs, m)
		h.now = func() time.Time { return fixedNow }
		s := &Server{Handler: h, Metrics: m}
		if general {
			s.Handler = generalHandler{h}
		}
		r := httptest.NewRequestWithContext(log.IntoContext(t.Context(), logr.Discard()), http.MethodPost, Path, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return outcome{code: w.Code, body: w.Body.String(), observed: obs.drain(), counts: admissionCounts(t, reg)}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if repeatsPodKeys(body) {
			t.Skip("request, object or oldObject named twice: the single pass merges what the general way replaces")
		}
		single, general := serve(t, body, false), serve(t, body, true)
		if diff := cmp.Diff(general, single, cmp.AllowUnexported(outcome{})); diff != "" {
			t.Errorf("single pass differs from the general way (-general +single):\n%s", diff)
		}
	})
}

// repeatsPodKeys reports whether a JSON object of body names request, object or oldObject more than once (as
// encoding/json matches names: without regard to case). No API server sends such a review.
func repeatsPodKeys(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		key    bool // the next token of an object is a key
		seen   map[string]bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if k, ok := tok.(string); ok {
				k = strings.ToLower(k)
				if k == "request" || k == "object" || k == "oldobject" {
					if top.seen[k] {
						return true
					}
					top.seen[k] = true
				}
				top.key = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, key: true, seen: map[string]bool{}})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = true // a value ended: a key comes next
		}
	}
}

// TestHandlerNoMetrics checks that a Handler without metrics (as in some tests of other packages) works.
func TestHandlerNoMetrics(t *testing.T) {
	obs := newObserver(0)
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "u", Kind: podGVK("", "Pod"), Operation: admissionv1.Create,
		Object: runtime.RawExtension{Raw: podJSON(t, simplePod())},
	}}
	if resp := New(obs, nil).Handle(t.Context(), req); !resp.Allowed {
		t.Errorf("Handle = %+v, want allowed", resp.AdmissionResponse)
	}
}

// reviewJSON is an AdmissionReview v1 request as the API server sends it.
func reviewJSON(t testing.TB, req admissionv1.AdmissionRequest) []byte {
	t.Helper()
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// denyingHandler is a Handler that denies everything, to show the Server allows whatever its Handler says.
type denyingHandler struct{}

func (denyingHandler) Handle(context.Context, admission.Request) admission.Response {
	return admission.Denied("no")
}

func TestServer(t *testing.T) {
	createReq := admissionv1.AdmissionRequest{
		UID: "705ab4f5-6393-11e8-b7cc-42010a800002", Kind: podGVK("", "Pod"),
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: "payments", Name: "api-7d9f8-x2x4k", Operation: admissionv1.Create,
		Object: runtime.RawExtension{Raw: podJSON(t, simplePod())},
	}
	create := reviewJSON(t, createReq)
	undecodable := createReq
	undecodable.Object = runtime.RawExtension{Raw: []byte(`{"spec":{"containers":[]}}`)}
	v1beta1 := bytes.Replace(create, []byte(`"admission.k8s.io/v1"`), []byte(`"admission.k8s.io/v1beta1"`), 1)
	wrongKind := bytes.Replace(create, []byte(`"AdmissionReview"`), []byte(`"AdmissionResponse"`), 1)
	// A field of the wrong type after the uid: the uid is decoded, the review is not.
	badOperation := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"uid-of-a-bad-review","operation":5}}`)
	oversized := append(append([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"big","name":"`),
		bytes.Repeat([]byte("a"), MaxBodyBytes)...), `"}}`...)

	tests := []struct {
		name        string
		method      string
		contentType string
		body        []byte
		handler     admission.Handler // default: a real Handler
		wantUID     types.UID
		observed    int
		counts      map[series]float64
	}{
		{
			name: "CREATE", body: create, wantUID: createReq.UID, observed: 1,
			counts: map[series]float64{{"CREATE", metrics.AdmissionObserved}: 1},
		},
		{
			name: "allowed whatever the handler says", body: create, handler: denyingHandler{}, wantUID: createReq.UID,
			counts: map[series]float64{},
		},
		{
			name: "undecodable pod in a well-formed review", body: reviewJSON(t, undecodable), wantUID: createReq.UID,
			counts: map[series]float64{{"CREATE", metrics.AdmissionUndecodable}: 1},
		},
		{
			name: "malformed JSON", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x"`),
			counts: map[series]float64{{"", metrics.AdmissionMalformed}: 1},
		},
		{
			name: "trailing data", body: append(append([]byte(nil), create...), "{}"...),
			counts: map[series]float64{{"", metrics.AdmissionMalformed}: 1},
		},
		{
			name: "empty body", body: nil,
			counts: map[series]float64{{"", metrics.AdmissionMalformed}: 1},
		},
		{
			name: "review without request", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`),
			counts: map[series]float64{{"", metrics.AdmissionMalformed}: 1},
		},
		{
			name: "field of the wrong type", body: badOperation, wantUID: "uid-of-a-bad-review",
			counts: map[series]float64{{"", metrics.AdmissionMalformed}: 1},
		},
		{
			name: "v1beta1 review", body: v1beta1, wantUID: createReq.UID,
			counts: map[series]float64{{"", metrics.AdmissionMalformed}: 1},
		},
		{
			name: "wrong kind", body: wrongKind, wantUID: createReq.UID,
			counts: map[series]float64{{"", metrics.AdmissionMalformed}: 1},
		},
		{
			name: "wrong content type", contentType: "text/plain", body: create,
			counts: map[series]float64{{"", metrics.AdmissionMalformed}: 1},
		},
		{
			name: "no content type", contentType: "-", body: create,
			counts: map[series]float64{{"", metrics.AdmissionMalformed}: 1},
		},
		{
			name: "GET", method: http.MethodGet,
			counts: map[series]float64{{"", metrics.AdmissionMalformed}: 1},
		},
		{
			name: "oversized body", body: oversized,
			counts: map[series]float64{{"", metrics.AdmissionMalformed}: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			m := metrics.New(reg)
			obs := newObserver(10)
			handler := tt.handler
			if handler == nil {
				h := New(obs, m)
				h.now = func() time.Time { return fixedNow }
				handler = h
			}
			s := &Server{Handler: handler, Metrics: m}
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			r := httptest.NewRequestWithContext(log.IntoContext(t.Context(), testr.New(t)), method, Path, bytes.NewReader(tt.body))
			switch tt.contentType {
			case "":
				r.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				r.Header.Set("Content-Type", tt.contentType)
			}
			w := httptest.NewRecorder()

			s.ServeHTTP(w, r)

			if w.Code != http.StatusOK {
				t.Errorf("status = %d, want 200", w.Code)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var got admissionv1.AdmissionReview
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("response %q is not an AdmissionReview: %v", w.Body, err)
			}
			want := admissionv1.AdmissionReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
				Response: &admissionv1.AdmissionResponse{UID: tt.wantUID, Allowed: true},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			if n := len(obs.drain()); n != tt.observed {
				t.Errorf("observed %d pods, want %d", n, tt.observed)
			}
			if diff := cmp.Diff(tt.counts, admissionCounts(t, reg)); diff != "" {
				t.Errorf("deptracker_admission_requests_total (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzServer checks that whatever arrives, the answer is a 200 allowing admission.
func FuzzServer(f *testing.F) {
	f.Add(reviewJSON(f, admissionv1.AdmissionRequest{
		UID: "u", Kind: podGVK("", "Pod"), Operation: admissionv1.Create,
		Object: runtime.RawExtension{Raw: podJSON(f, simplePod())},
	}))
	f.Add(reviewJSON(f, admissionv1.AdmissionRequest{
		UID: "u", Kind: podGVK("", "Pod"), Operation: admissionv1.Delete,
		OldObject: runtime.RawExtension{Raw: podJSON(f, benchPod())},
	}))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":[{}]}}}}`))
	f.Add([]byte(`{"request":null}`))
	f.Add([]byte(`[]`))
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	obs := newObserver(1)
	s := &Server{Handler: New(obs, m), Metrics: m}
	total := func(t *testing.T) float64 {
		var n float64
		for _, v := range admissionCounts(t, reg) {
			n += v
		}
		return n
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		before := total(t)
		r := httptest.NewRequestWithContext(log.IntoContext(t.Context(), logr.Discard()), http.MethodPost, Path, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		obs.drain()
		var got admissionv1.AdmissionReview
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusOK || got.Response == nil || !got.Response.Allowed {
			t.Fatalf("ServeHTTP answered %d %q (%v), want 200 and allowed", w.Code, w.Body, err)
		}
		if n := total(t) - before; n != 1 {
			t.Errorf("counted %v reviews, want 1", n)
		}
	})
}

// benchPod is a realistic pod of a Deployment: three containers and an init container, labels and
// annotations, an owner reference, about twenty environment variables, volumes, probes and resources; with
// status, as a DELETE carries it.
func benchPod() *corev1.Pod {
	env := func(names ...string) []corev1.EnvVar {
		vars := make([]corev1.EnvVar, 0, len(names))
		for _, n := range names {
			vars = append(vars, corev1.EnvVar{Name: n, Value: strings.ToLower(n) + "-value"})
		}
		return vars
	}
	probe := &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
		PeriodSeconds:    10,
		FailureThreshold: 3,
	}
	container := func(name, image string, vars []corev1.EnvVar) corev1.Container {
		return corev1.Container{
			Name: name, Image: image, Env: vars,
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
			VolumeMounts:   []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}, {Name: "kube-api-access-x7k2p", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}},
			LivenessProbe:  probe,
			ReadinessProbe: probe,
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			},
			TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			ImagePullPolicy: corev1.PullIfNotPresent,
		}
	}
	appEnv := env("APP_ENV", "LOG_LEVEL", "LOG_FORMAT", "PORT", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER",
		"REDIS_URL", "KAFKA_BROKERS", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "FEATURE_FLAGS_URL",
		"CACHE_TTL", "MAX_CONNECTIONS", "REQUEST_TIMEOUT", "REGION", "TZ")
	appEnv = append(appEnv,
		corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		corev1.EnvVar{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "api-db"}, Key: "password",
		}}},
	)
	started := metav1.NewTime(fixedNow)
	status := func(name, image, digest string) corev1.ContainerStatus {
		return corev1.ContainerStatus{
			Name: name, Image: image, ImageID: image + "@" + digest, Ready: true, Started: ptr.To(true),
			ContainerID: "containerd://4f0c6f0b5d7e4a1c9a3f2b1e0d9c8b7a6f5e4d3c2b1a09f8e7d6c5b4a3f2e1d0",
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "api-7d9f8c6b5-x2x4k", GenerateName: "api-7d9f8c6b5-", Namespace: "payments",
			UID: "0c9b3a3e-8a47-4a4e-9d6f-5f1c6c1b9e01", ResourceVersion: "123456789", CreationTimestamp: started,
			Labels: map[string]string{
				"app.kubernetes.io/name": "api", "app.kubernetes.io/instance": "api-prod", "app.kubernetes.io/version": "1.2.3",
				"app.kubernetes.io/component": "server", "app.kubernetes.io/part-of": "payments", "pod-template-hash": "7d9f8c6b5",
			},
			Annotations: map[string]string{
				"metadata.github.com/team": "payments", "metadata.github.com/runtime-risks": "internet-exposed,sensitive-data",
				"kubectl.kubernetes.io/restartedAt": "2030-01-01T00:00:00Z", "prometheus.io/scrape": "true", "prometheus.io/port": "9090",
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "api-7d9f8c6b5", UID: "6f1d0f3e-1b2a-4c5d-8e9f-0a1b2c3d4e5f",
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{container("migrate", "ghcr.io/octo-org/api-migrate:1.2.3", env("DB_HOST", "DB_NAME"))},
			Containers: []corev1.Container{
				container("server", "ghcr.io/octo-org/api:1.2.3@"+digestA, appEnv),
				container("proxy", "envoyproxy/envoy:v1.31.2", env("ENVOY_UID", "LOG_LEVEL")),
				container("log-shipper", "fluent/fluent-bit:3.1", env("FLUENT_HOST")),
			},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "api-config"}}}},
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "api-tls"}}},
				{Name: "kube-api-access-x7k2p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
				}}}},
			},
			ServiceAccountName: "api", NodeName: "node-a-17", RestartPolicy: corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr.To[int64](30), DNSPolicy: corev1.DNSClusterFirst, SchedulerName: "default-scheduler",
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
			},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, HostIP: "10.0.3.17", PodIP: "10.244.3.58", StartTime: &started, QOSClass: corev1.PodQOSBurstable,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: started},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: started},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: started},
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: started},
			},
			InitContainerStatuses: []corev1.ContainerStatus{status("migrate", "ghcr.io/octo-org/api-migrate:1.2.3", digestB)},
			ContainerStatuses: []corev1.ContainerStatus{
				status("server", "ghcr.io/octo-org/api:1.2.3", digestA),
				status("proxy", "docker.io/envoyproxy/envoy:v1.31.2", digestB),
				status("log-shipper", "docker.io/fluent/fluent-bit:3.1", digestA),
			},
		},
	}
}

// discardObserver accepts and forgets, so that a benchmark measures the handler alone.
type discardObserver struct{}

func (discardObserver) Observe(observation.Admission) bool { return true }

// benchRequests are the admission requests of benchPod: CREATE (without status, as the API server sends it)
// and DELETE (with status, in oldObject).
func benchRequests(b testing.TB) map[string]admissionv1.AdmissionRequest {
	b.Helper()
	fresh := benchPod()
	fresh.Status, fresh.ResourceVersion, fresh.Spec.NodeName = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBurstable}, "", ""
	base := admissionv1.AdmissionRequest{
		UID: "705ab4f5-6393-11e8-b7cc-42010a800002", Kind: podGVK("", "Pod"),
		Resource:        metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		RequestKind:     ptr.To(podGVK("", "Pod")),
		RequestResource: &metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace:       "payments", Name: fresh.Name,
		UserInfo: authenticationv1.UserInfo{
			Username: "system:serviceaccount:kube-system:replicaset-controller", UID: "a1b2c3d4-0000-4000-8000-000000000001",
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
		},
	}
	create, del := base, base
	create.Operation, create.Object = admissionv1.Create, runtime.RawExtension{Raw: podJSON(b, fresh)}
	del.Operation, del.OldObject = admissionv1.Delete, runtime.RawExtension{Raw: podJSON(b, benchPod())}
	return map[string]admissionv1.AdmissionRequest{"CREATE": create, "DELETE": del}
}

func BenchmarkHandler(b *testing.B) {
	reqs := benchRequests(b)
	for _, op := range []string{"CREATE", "DELETE"} {
		b.Run(op, func(b *testing.B) {
			h := New(discardObserver{}, metrics.New(prometheus.NewRegistry()))
			req := admission.Request{AdmissionRequest: reqs[op]} // as Server builds it, once
			ctx := log.IntoContext(b.Context(), logr.Discard())
			raw := req.Object.Raw
			if op == "DELETE" {
				raw = req.OldObject.Raw
			}
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if resp := h.Handle(ctx, req); !resp.Allowed {
					b.Fatal("not allowed")
				}
			}
		})
	}
}

func BenchmarkServer(b *testing.B) {
	reqs := benchRequests(b)
	for _, op := range []string{"CREATE", "DELETE"} {
		b.Run(op, func(b *testing.B) {
			m := metrics.New(prometheus.NewRegistry())
			s := &Server{Handler: New(discardObserver{}, m), Metrics: m}
			body := reviewJSON(b, reqs[op])
			r := httptest.NewRequestWithContext(log.IntoContext(b.Context(), logr.Discard()), http.MethodPost, Path, nil)
			r.Header.Set("Content-Type", "application/json")
			rd := bytes.NewReader(body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				r.Body = readCloser{rd}
				w := httptest.NewRecorder()
				s.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// TestObservationIsBounded: whatever a review holds, what is kept of it is bounded (a forged review with
// thousands of containers and huge strings must not take the replica's memory).
func TestObservationIsBounded(t *testing.T) {
	huge := strings.Repeat("x", 100_000)
	p := simplePod()
	p.Name, p.Namespace = huge, huge
	p.Spec.InitContainers = nil
	p.Spec.Containers = nil
	for i := range 3 * MaxContainers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d-%s", i, huge), Image: "ghcr.io/" + huge})
	}
	obs, err := decode(podJSON(t, p))
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Containers) != MaxContainers {
		t.Errorf("kept %d containers, want %d", len(obs.Containers), MaxContainers)
	}
	size := len(obs.Name) + len(obs.Namespace) + len(obs.UID)
	for _, c := range obs.Containers {
		size += len(c.Name) + len(c.Image)
	}
	if limit := 3*maxNameBytes + MaxContainers*(maxNameBytes+maxImageBytes); size > limit {
		t.Errorf("kept %d bytes of strings, want at most %d", size, limit)
	}
}
