// Package webhook is the observe-only admission webhook for pods. It captures the images of pods at CREATE and
// their departure at DELETE and hands them to the tracker without waiting. It never denies and never mutates:
// every review is answered allowed, including the ones it cannot make sense of.
//
// Server is the transport of the reviews (decoding, a cap on reviews in flight), Handler the observation, and
// TLSServer the HTTPS server the manager runs for them: TLS 1.2 or later, HTTP/1.1 only, read, write and idle
// timeouts. A replica that does not lead answers without observing (Handler.Elected).
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
	"github.com/deployment-tracker/deployment-tracker/internal/observation"
)

// Path is where the webhook is served; the shipped ValidatingWebhookConfiguration points at it.
const Path = "/validate-v1-pod"

// MaxBodyBytes bounds an admission review. The API server limits objects to about 1.5 MiB (etcd's request
// limit) and a review carries at most object and oldObject.
const MaxBodyBytes = 4 << 20

// Observer receives pods seen at admission. Observe must not block: it returns false when the observation was
// dropped (the hand-off buffer is full); the informer path still produces the record then.
type Observer interface {
	Observe(a observation.Admission) bool
}

// Scoper is implemented by an Observer that tracks only some namespaces (the tracker's scope): a pod of a
// namespace out of its scope is not handed on, and its review is counted ignored. InScope must be cheap.
type Scoper interface {
	InScope(namespace string) bool
}

// Handler is the admission.Handler for pods.
type Handler struct {
	// Elected, when set, is closed once this replica leads (manager.Manager's Elected). Until then the
	// replica is a standby: its tracker does not run, so an observation would only wait in the hand-off buffer
	// for a leadership that may never come. A standby answers allowed without observing, counts the review
	// standby, and leaves the pod to the leader's informer, which records every pod: the review is irrelevant
	// to the records, and the rollout's submission time falls back to the pod's creationTimestamp (set by the
	// same API request). nil: always elected.
	Elected <-chan struct{}

	observer Observer
	metrics  *metrics.Metrics
	now      func() time.Time
}

var _ admission.Handler = (*Handler)(nil)

// New returns a Handler handing observations to o.
func New(o Observer, m *metrics.Metrics) *Handler {
	return &Handler{observer: o, metrics: m, now: time.Now}
}

// podView is the part of a pod the webhook reads. Decoding into it instead of a full corev1.Pod skips
// everything else (volumes, env, probes, status) and keeps the handler to a few allocations.
type podView struct {
	Metadata struct {
		Name      string    `json:"name"`
		Namespace string    `json:"namespace"`
		UID       types.UID `json:"uid"`
	} `json:"metadata"`
	Spec struct {
		Containers     []containerView `json:"containers"`
		InitContainers []containerView `json:"initContainers"`
	} `json:"spec"`
}

type containerView struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// Handle observes one admission request. It always returns allowed.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	return h.handle(ctx, &req.AdmissionRequest, nil)
}

// handle observes req. decoded, when set, holds req's object and oldObject already decoded (Server's single
// pass over the review); else they are decoded from req's raw bytes.
func (h *Handler) handle(ctx context.Context, req *admissionv1.AdmissionRequest, decoded *requestView) admission.Response {
	allowed := admission.Allowed("")
	op := string(req.Operation)
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.SubResource != "" {
		h.count(op, metrics.AdmissionIgnored)
		return allowed
	}
	if req.DryRun != nil && *req.DryRun {
		h.count(op, metrics.AdmissionDryRun)
		return allowed
	}
	var raw []byte
	var pod *podView
	switch req.Operation {
	case admissionv1.Create:
		raw = req.Object.Raw
		if decoded != nil {
			pod = decoded.Object
		}
	case admissionv1.Delete:
		raw = req.OldObject.Raw
		if decoded != nil {
			pod = decoded.OldObject
		}
	default:
		h.count(op, metrics.AdmissionIgnored)
		return allowed
	}
	if !h.elected() {
		h.count(op, metrics.AdmissionStandby)
		return allowed
	}
	var obs observation.Admission
	var err error
	if decoded != nil {
		obs, err = observe(pod)
	} else {
		obs, err = decode(raw)
	}
	if err != nil {
		h.count(op, metrics.AdmissionUndecodable)
		log.FromContext(ctx).Error(err, "Cannot decode pod in admission review; allowed and not observed",
			"uid", req.UID, "namespace", req.Namespace, "name", req.Name, "operation", op)
		return allowed
	}
	obs.Operation = observation.Operation(op)
	obs.Time = h.now()
	if obs.Namespace == "" {
		obs.Namespace = req.Namespace // a pod being created carries its namespace in the request only
	}
	if obs.Name == "" {
		obs.Name = req.Name
	}
	if s, ok := h.observer.(Scoper); ok && !s.InScope(obs.Namespace) {
		h.count(op, metrics.AdmissionIgnored)
		return allowed
	}
	if !h.observer.Observe(obs) {
		h.count(op, metrics.AdmissionDropped)
		return allowed
	}
	h.count(op, metrics.AdmissionObserved)
	return allowed
}

// elected reports whether this replica leads (see Elected).
func (h *Handler) elected() bool {
	if h.Elected == nil {
		return true
	}
	select {
	case <-h.Elected:
		return true
	default:
		return false
	}
}

// count counts a review.
func (h *Handler) count(op, outcome string) {
	if h.metrics == nil {
		return
	}
	h.metrics.Admission.WithLabelValues(operationLabel(op), outcome).Inc()
}

// operationLabel is the operation label of a review: the values the admission API defines, and "other": a
// forged review with another operation must not create a new series.
func operationLabel(op string) string {
	switch admissionv1.Operation(op) {
	case admissionv1.Create, admissionv1.Update, admissionv1.Delete, admissionv1.Connect:
		return op
	default:
		return "other"
	}
}

// decode decodes the pod of a request from its raw bytes.
func decode(raw []byte) (observation.Admission, error) {
	if len(raw) == 0 {
		return observation.Admission{}, errors.New("no object in request")
	}
	var p podView
	if err := unmarshal(raw, &p); err != nil {
		return observation.Admission{}, fmt.Errorf("decode pod: %w", err)
	}
	return observe(&p)
}

// observe is the observation of a decoded pod; p is nil when the request has no object.
func observe(p *podView) (observation.Admission, error) {
	if p == nil {
		return observation.Admission{}, errors.New("no object in request")
	}
	if len(p.Spec.Containers) == 0 {
		return observation.Admission{}, errors.New("decode pod: no containers")
	}
	// What is kept is bounded whatever a (forged) review holds: a pod the API server accepts stays well within
	// these.
	n := min(len(p.Spec.InitContainers), MaxContainers) + min(len(p.Spec.Containers), MaxContainers)
	cs := make([]observation.Container, 0, n)
	for i, c := range p.Spec.InitContainers {
		if i == MaxContainers {
			break
		}
		cs = append(cs, observation.Container{Name: bounded(c.Name, maxNameBytes), Image: bounded(c.Image, maxImageBytes), Init: true})
	}
	for i, c := range p.Spec.Containers {
		if i == MaxContainers {
			break
		}
		cs = append(cs, observation.Container{Name: bounded(c.Name, maxNameBytes), Image: bounded(c.Image, maxImageBytes)})
	}
	return observation.Admission{
		Namespace:  bounded(p.Metadata.Namespace, maxNameBytes),
		Name:       bounded(p.Metadata.Name, maxNameBytes),
		UID:        types.UID(bounded(string(p.Metadata.UID), maxNameBytes)),
		Containers: cs,
	}, nil
}

// Bounds of an observation. Kubernetes names are at most 253 characters (container names 63); an image
// reference has no set limit, but registries refuse names past 255 characters and a digest adds 71.
const (
	// MaxContainers is how many containers (and as many init containers) of a pod are observed.
	MaxContainers = 64
	maxNameBytes  = 253
	maxImageBytes = 512
)

// bounded returns s cut to at most n bytes (an over-long value is not a valid one: it is not recorded either
// way, and the cut keeps memory bounded). A cut value is copied, so that it does not keep the long one alive;
// others are kept as they are (json.Unmarshal gave each its own allocation).
func bounded(s string, n int) string {
	if len(s) > n {
		return strings.Clone(s[:n])
	}
	return s
}

// Server is the http.Handler that decodes AdmissionReview v1 requests and answers them with Handler.
//
// controller-runtime's admission.Webhook answers a review it cannot read with allowed=false, which the API
// server treats as a denial even with failurePolicy Ignore. This transport answers every request with
// allowed=true, counts the malformed ones, and bounds the body at MaxBodyBytes.
//
// With this package's Handler, a review is decoded in one pass: the pod in object or oldObject is decoded into
// the fields the webhook reads together with the request, instead of being copied out as raw bytes and decoded
// a second time. A review the single pass does not take cleanly (malformed, unsupported, or a pod of the wrong
// shape) is decoded the general way, so that it is answered, counted and logged as any Handler's would be. (A
// review naming object or oldObject twice, which no API server sends, has the two merged where the general way
// takes the last.)
//
// At most MaxInFlight reviews are read and answered at once: they bound the memory reviews can take (each up to
// MaxBodyBytes, decoded). A review over the cap is shed: answered allowed at once, with the uid read from the
// start of its body (the API server refuses an answer with another uid, which failurePolicy Fail would turn
// into a denial), not observed, and counted dropped. The pod informer records its pod as it does any pod the
// webhook missed. The server never waits for a slot and never denies.
type Server struct {
	Handler admission.Handler
	Metrics *metrics.Metrics
	// MaxInFlight caps the reviews served at once (default DefaultMaxInFlight).
	MaxInFlight int

	inFlight atomic.Int64
}

// DefaultMaxInFlight is the default cap of reviews served at once. A review of a real pod is answered in well
// under a millisecond, so even a burst of thousands of pod writes a second keeps one or two in flight; the cap
// is reached by slow or oversized (forged) reviews. One of MaxBodyBytes takes two to three times that while it
// is served (its body, and what is decoded from it: 6 MiB measured for a 3 MiB image name), so 8 take under
// 100 MiB at worst, within the shipped 256 MiB memory limit beside the caches.
const DefaultMaxInFlight = 8

// peekBytes is how much of a shed review's body is read for its uid and operation. The API server writes them
// first (the order of AdmissionRequest's fields: uid, kind, resource, names, operation), a few hundred bytes in.
const peekBytes = 4 << 10

// reviewView is an AdmissionReview v1 whose request carries its pods decoded (Server's single pass).
type reviewView struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Request    *requestView `json:"request"`
}

// requestView is an AdmissionRequest whose object and oldObject are decoded as pods: its own Object and
// OldObject take the JSON names from the embedded request's raw ones (encoding/json prefers the shallower
// field), every other field is decoded, and checked, as in an AdmissionRequest. nil: no object (or null).
type requestView struct {
	admissionv1.AdmissionRequest
	Object    *podView `json:"object"`
	OldObject *podView `json:"oldObject"`
}

type reviewResponse struct {
	APIVersion string                         `json:"apiVersion"`
	Kind       string                         `json:"kind"`
	Response   *admissionv1.AdmissionResponse `json:"response"`
}

// bodies are the buffers request bodies are read into, reused: nothing decoded from a body refers to its bytes
// (encoding/json copies every string, and a RawExtension its bytes).
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody is the largest body buffer kept for reuse, so that a rare large review does not stay in memory.
const maxPooledBody = 256 << 10

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	maxInFlight := int64(s.MaxInFlight)
	if maxInFlight <= 0 {
		maxInFlight = DefaultMaxInFlight
	}
	if s.inFlight.Add(1) > maxInFlight {
		s.inFlight.Add(-1)
		s.shed(w, r)
		return
	}
	defer s.inFlight.Add(-1)
	s.serve(w, r)
}

// shed answers a review over the cap: allowed, unobserved, counted dropped.
func (s *Server) shed(w http.ResponseWriter, r *http.Request) {
	uid, op := peekReview(io.LimitReader(r.Body, peekBytes))
	if s.Metrics != nil {
		if op != "" {
			op = operationLabel(op)
		}
		s.Metrics.Admission.WithLabelValues(op, metrics.AdmissionDropped).Inc()
	}
	s.write(r.Context(), w, &admissionv1.AdmissionResponse{UID: uid, Allowed: true})
}

// peekReview returns the uid and operation of the review r starts with, as far as r holds them: streamed
// token by token, without decoding the rest; "" for what is not found.
func peekReview(r io.Reader) (uid types.UID, op string) {
	dec := json.NewDecoder(r)
	str := func() (string, bool) {
		t, err := dec.Token()
		s, ok := t.(string)
		return s, err == nil && ok
	}
	open := func() bool {
		t, err := dec.Token()
		return err == nil && t == json.Delim('{')
	}
	skip := func() bool {
		var v json.RawMessage
		return dec.Decode(&v) == nil
	}
	if !open() {
		return "", ""
	}
	for dec.More() {
		key, ok := str()
		if !ok {
			return "", ""
		}
		if key != "request" {
			if !skip() {
				return "", ""
			}
			continue
		}
		if !open() {
			return "", ""
		}
		for dec.More() && (uid == "" || op == "") {
			key, ok := str()
			if !ok {
				return uid, op
			}
			switch key {
			case "uid", "operation":
				v, ok := str()
				if !ok {
					return uid, op
				}
				if key == "uid" {
					uid = types.UID(v)
				} else {
					op = v
				}
			default:
				if !skip() {
					return uid, op
				}
			}
		}
		return uid, op
	}
	return "", ""
}

// serve reads, decodes and answers a review.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body := bodies.Get().(*bytes.Buffer)
	defer func() {
		if body.Cap() <= maxPooledBody {
			body.Reset()
			bodies.Put(body)
		}
	}()
	err := s.read(w, r, body)
	if h, ok := s.Handler.(*Handler); ok && err == nil {
		var review reviewView
		if unmarshal(body.Bytes(), &review) == nil && supported(review.APIVersion, review.Kind) && review.Request != nil {
			req := &review.Request.AdmissionRequest
			s.answer(ctx, w, req.UID, h.handle(handlerContext(ctx), req, review.Request))
			return
		}
	}
	var review admissionv1.AdmissionReview
	if err == nil {
		err = decodeReview(body.Bytes(), &review)
	}
	if err != nil {
		if s.Metrics != nil {
			s.Metrics.Admission.WithLabelValues("", metrics.AdmissionMalformed).Inc()
		}
		log.FromContext(ctx).Info("Malformed admission review; answered allowed", "error", err.Error(), "remote", r.RemoteAddr)
		uid := types.UID("")
		if review.Request != nil {
			uid = review.Request.UID
		}
		s.write(ctx, w, &admissionv1.AdmissionResponse{UID: uid, Allowed: true})
		return
	}
	req := admission.Request{AdmissionRequest: *review.Request}
	s.answer(ctx, w, req.UID, s.Handler.Handle(handlerContext(ctx), req))
}

// handlerContext is the context a Handler is called with: its logger names the webhook.
func handlerContext(ctx context.Context) context.Context {
	return log.IntoContext(ctx, log.FromContext(ctx).WithValues("webhook", Path))
}

// answer writes the handler's response to the review uid, allowed whatever the handler said: the webhook only
// observes.
func (s *Server) answer(ctx context.Context, w http.ResponseWriter, uid types.UID, resp admission.Response) {
	resp.UID = uid
	resp.Allowed = true
	resp.Result = nil
	s.write(ctx, w, &resp.AdmissionResponse)
}

// read checks the request and reads its body, at most MaxBodyBytes, into body.
func (s *Server) read(w http.ResponseWriter, r *http.Request, body *bytes.Buffer) error {
	if r.Method != http.MethodPost {
		return fmt.Errorf("method %s, want POST", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return fmt.Errorf("content type %q, want application/json", ct)
	}
	// Room for the announced length (bounded) and the final read's: one allocation, none when reused.
	body.Grow(int(min(max(r.ContentLength, 0), MaxBodyBytes)) + bytes.MinRead)
	if _, err := body.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes)); err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	return nil
}

// decodeReview decodes an AdmissionReview v1 with a request.
func decodeReview(body []byte, review *admissionv1.AdmissionReview) error {
	if err := json.Unmarshal(body, review); err != nil {
		return fmt.Errorf("decode admission review: %w", err)
	}
	if review.Request == nil {
		return errors.New("admission review has no request")
	}
	if !supported(review.APIVersion, review.Kind) {
		return fmt.Errorf("unsupported %s %s, want admission.k8s.io/v1 AdmissionReview", review.APIVersion, review.Kind)
	}
	return nil
}

// reviewAPIVersion is the apiVersion of the reviews served and answered.
var reviewAPIVersion = admissionv1.SchemeGroupVersion.String()

func supported(apiVersion, kind string) bool {
	return apiVersion == reviewAPIVersion && kind == "AdmissionReview"
}

func (s *Server) write(ctx context.Context, w http.ResponseWriter, resp *admissionv1.AdmissionResponse) {
	w.Header().Set("Content-Type", "application/json")
	out := reviewResponse{APIVersion: reviewAPIVersion, Kind: "AdmissionReview", Response: resp}
	if err := json.NewEncoder(w).Encode(out); err != nil {
		log.FromContext(ctx).Error(err, "Cannot write admission response")
	}
}
