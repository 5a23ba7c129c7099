package telemetry

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// receiver is an in-process OTLP collector: the gRPC services of go.opentelemetry.io/proto/otlp, or an
// OTLP/HTTP handler. It keeps every request it is sent.
type receiver struct {
	mu      sync.Mutex
	metrics []*colmetricpb.ExportMetricsServiceRequest
	traces  []*coltracepb.ExportTraceServiceRequest
	paths   []string // the OTLP/HTTP requests' paths
	changed chan struct{}
}

func newReceiver() *receiver { return &receiver{changed: make(chan struct{}, 1)} }

func (r *receiver) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *receiver) addMetrics(req *colmetricpb.ExportMetricsServiceRequest) {
	r.mu.Lock()
	r.metrics = append(r.metrics, req)
	r.mu.Unlock()
	r.notify()
}

func (r *receiver) addTraces(req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	r.traces = append(r.traces, req)
	r.mu.Unlock()
	r.notify()
}

// metricsService and traceService are the collector's gRPC services (both have a method Export).
type metricsService struct {
	colmetricpb.UnimplementedMetricsServiceServer
	r *receiver
}

func (s metricsService) Export(_ context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	s.r.addMetrics(req)
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

type traceService struct {
	coltracepb.UnimplementedTraceServiceServer
	r *receiver
}

func (s traceService) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.r.addTraces(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// startGRPC serves a receiver over gRPC (plain text) on a 127.0.0.1 port; it returns it and its host:port.
func startGRPC(t *testing.T) (*receiver, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := newReceiver()
	srv := grpc.NewServer()
	colmetricpb.RegisterMetricsServiceServer(srv, metricsService{r: r})
	coltracepb.RegisterTraceServiceServer(srv, traceService{r: r})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return r, lis.Addr().String()
}

// startHTTP serves a receiver over OTLP/HTTP (binary protobuf) under base; any other path is a 404.
func startHTTP(t *testing.T, base string) (*receiver, *httptest.Server) {
	t.Helper()
	r := newReceiver()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.paths = append(r.paths, req.URL.Path)
		r.mu.Unlock()
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("%s %s with Content-Type %q, want POST application/x-protobuf", req.Method, req.URL.Path, req.Header.Get("Content-Type"))
			http.Error(w, "want POST application/x-protobuf", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		if err != nil {
			t.Error(err)
			return
		}
		var resp proto.Message
		switch req.URL.Path {
		case base + "/v1/metrics":
			m := &colmetricpb.ExportMetricsServiceRequest{}
			if err = proto.Unmarshal(body, m); err == nil {
				r.addMetrics(m)
			}
			resp = &colmetricpb.ExportMetricsServiceResponse{}
		case base + "/v1/traces":
			m := &coltracepb.ExportTraceServiceRequest{}
			if err = proto.Unmarshal(body, m); err == nil {
				r.addTraces(m)
			}
			resp = &coltracepb.ExportTraceServiceResponse{}
		default:
			http.NotFound(w, req)
			r.notify()
			return
		}
		if err != nil {
			t.Errorf("decode %s: %v", req.URL.Path, err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b, err := proto.Marshal(resp)
		if err != nil {
			t.Error(err)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return r, srv
}

// waitFor returns when check, run on every request the receiver gets, returns ""; after a deadline it fails
// the test with check's last answer.
func (r *receiver) waitFor(t *testing.T, check func() string) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		msg := check()
		if msg == "" {
			return
		}
		select {
		case <-r.changed:
		case <-deadline.C:
			t.Fatalf("the receiver did not get the expected data: %s", msg)
		}
	}
}

// point is a metric point as the tests compare it: the counter's value, or the histogram's count and sum.
type point struct {
	Metric, Type, Unit string
	Attrs              map[string]string
	Count              uint64
	Sum                float64
	// Exemplars are the exemplars' trace IDs.
	Exemplars []string
}

// gotPoints are the latest points of each metric and attribute set the receiver got, sorted; metrics are
// cumulative, so the latest point has all the measurements.
func (r *receiver) gotPoints() []point {
	r.mu.Lock()
	defer r.mu.Unlock()
	latest := map[string]point{}
	for _, req := range r.metrics {
		for _, rm := range req.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					for _, p := range metricPoints(m) {
						latest[p.Metric+"|"+attrKey(p.Attrs)] = p
					}
				}
			}
		}
	}
	var out []point
	for _, p := range latest {
		out = append(out, p)
	}
	return sortPoints(out)
}

// sortPoints sorts points by metric and attributes.
func sortPoints(points []point) []point {
	slices.SortFunc(points, func(a, b point) int {
		return strings.Compare(a.Metric+"|"+attrKey(a.Attrs), b.Metric+"|"+attrKey(b.Attrs))
	})
	return points
}

func metricPoints(m *metricpb.Metric) []point {
	var out []point
	switch d := m.GetData().(type) {
	case *metricpb.Metric_ExponentialHistogram:
		for _, p := range d.ExponentialHistogram.GetDataPoints() {
			out = append(out, point{Metric: m.GetName(), Type: "exponential histogram", Unit: m.GetUnit(),
				Attrs: attrMap(p.GetAttributes()), Count: p.GetCount(), Sum: p.GetSum(), Exemplars: exemplarTraces(p.GetExemplars())})
		}
	case *metricpb.Metric_Histogram:
		for _, p := range d.Histogram.GetDataPoints() {
			out = append(out, point{Metric: m.GetName(), Type: "histogram", Unit: m.GetUnit(),
				Attrs: attrMap(p.GetAttributes()), Count: p.GetCount(), Sum: p.GetSum()})
		}
	case *metricpb.Metric_Sum:
		typ := "sum"
		if d.Sum.GetIsMonotonic() && d.Sum.GetAggregationTemporality() == metricpb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
			typ = "cumulative counter"
		}
		for _, p := range d.Sum.GetDataPoints() {
			out = append(out, point{Metric: m.GetName(), Type: typ, Unit: m.GetUnit(),
				Attrs: attrMap(p.GetAttributes()), Sum: float64(p.GetAsInt()), Exemplars: exemplarTraces(p.GetExemplars())})
		}
	default:
		out = append(out, point{Metric: m.GetName(), Type: "other"})
	}
	return out
}

func exemplarTraces(es []*metricpb.Exemplar) []string {
	var out []string
	for _, e := range es {
		out = append(out, hex.EncodeToString(e.GetTraceId()))
	}
	return out
}

// span is a span as the tests compare it.
type span struct {
	Name string
	// Parent is the parent span's name; "" for a root span.
	Parent     string
	Start, End time.Time
	Attrs      map[string]string
	Status     string
}

// rolloutTrace is the spans of one trace, with its ID.
type rolloutTrace struct {
	ID    string
	Spans []span
}

// gotTraces are the traces the receiver got, each with its spans by start time, root first; sorted by the root's
// name.
func (r *receiver) gotTraces() []rolloutTrace {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []*tracepb.Span
	for _, req := range r.traces {
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				all = append(all, ss.GetSpans()...)
			}
		}
	}
	names := map[string]string{}
	for _, s := range all {
		names[hex.EncodeToString(s.GetSpanId())] = s.GetName()
	}
	byTrace := map[string][]span{}
	for _, s := range all {
		status := ""
		if s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
			status = "Error: " + s.GetStatus().GetMessage()
		}
		id := hex.EncodeToString(s.GetTraceId())
		parent := ""
		if len(s.GetParentSpanId()) > 0 {
			parent = names[hex.EncodeToString(s.GetParentSpanId())]
			if parent == "" {
				parent = "unknown span " + hex.EncodeToString(s.GetParentSpanId())
			}
		}
		byTrace[id] = append(byTrace[id], span{Name: s.GetName(), Parent: parent, Status: status,
			Start: time.Unix(0, int64(s.GetStartTimeUnixNano())).UTC(), End: time.Unix(0, int64(s.GetEndTimeUnixNano())).UTC(),
			Attrs: attrMap(s.GetAttributes())})
	}
	var out []rolloutTrace
	for id, spans := range byTrace {
		slices.SortFunc(spans, func(a, b span) int {
			if aRoot, bRoot := a.Parent == "", b.Parent == ""; aRoot != bRoot {
				if aRoot {
					return -1
				}
				return 1
			}
			return a.Start.Compare(b.Start)
		})
		out = append(out, rolloutTrace{ID: id, Spans: spans})
	}
	slices.SortFunc(out, func(a, b rolloutTrace) int { return strings.Compare(a.Spans[0].Name, b.Spans[0].Name) })
	return out
}

// gotResources are the attributes of the resources of every request.
func (r *receiver) gotResources() []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]string
	for _, req := range r.metrics {
		for _, rm := range req.GetResourceMetrics() {
			out = append(out, attrMap(rm.GetResource().GetAttributes()))
		}
	}
	for _, req := range r.traces {
		for _, rs := range req.GetResourceSpans() {
			out = append(out, attrMap(rs.GetResource().GetAttributes()))
		}
	}
	return out
}

// gotPaths are the OTLP/HTTP requests' paths, sorted, each once.
func (r *receiver) gotPaths() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	paths := slices.Clone(r.paths)
	slices.Sort(paths)
	return slices.Compact(paths)
}

func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = strconv.FormatInt(v.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = strconv.FormatBool(v.BoolValue)
		default:
			m[kv.GetKey()] = kv.GetValue().String()
		}
	}
	return m
}

func attrKey(m map[string]string) string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}
