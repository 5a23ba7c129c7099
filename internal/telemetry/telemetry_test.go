package telemetry

import (
	"context"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deployment-tracker/deployment-tracker/internal/delivery"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/version"
)

// commitTime is the commit of the web rollout; the other times are minutes after it.
var commitTime = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func at(minutes int) time.Time { return commitTime.Add(time.Duration(minutes) * time.Minute) }

const sha = "0123456789abcdef0123456789abcdef01234567"

// web is a Deployment's rollout with a known commit that ends an outage of its workload: it completes.
func web() delivery.Rollout {
	return delivery.Rollout{
		Workload:    owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "web"},
		Environment: "production", Cluster: "kind", Revision: 3, Commit: sha, CommitTime: commitTime,
		Submitted: at(10), FirstRunning: at(11), Completed: at(13), FailedSince: at(-60),
	}
}

// pg is a StatefulSet's rollout without a commit: it fails.
func pg() delivery.Rollout {
	return delivery.Rollout{
		Workload:    owner.Workload{Group: "apps", Kind: "StatefulSet", Namespace: "db", Name: "pg"},
		Environment: "production", Cluster: "kind", Revision: 7,
		Submitted: at(1), FirstRunning: at(2), Finished: at(12),
	}
}

// api is a rollout of a custom kind, rolled back after it completed.
func api() delivery.Rollout {
	return delivery.Rollout{
		Workload:    owner.Workload{Group: "argoproj.io", Kind: "Rollout", Namespace: "shop", Name: "api"},
		Environment: "production", Cluster: "kind", Revision: 2,
		Submitted: at(1), FirstRunning: at(2), Completed: at(5), Finished: at(20),
	}
}

// observations are what each test records: web's two, pg's failure and api's roll back.
func observations() []delivery.Observation {
	return []delivery.Observation{
		{Kind: delivery.KindRunning, Rollout: web()},
		{Kind: delivery.KindComplete, Rollout: web()},
		{Kind: delivery.KindFailed, Rollout: pg()},
		{Kind: delivery.KindRolledBack, Rollout: api()},
	}
}

// record records observations() with exp, and pg as a rollout without a commit.
func record(t *testing.T, exp *Exporter) {
	for _, o := range observations() {
		exp.Record(t.Context(), o)
	}
	exp.RecordWithoutCommit(t.Context(), pg(), "none")
}

// workloadAttrs are the attributes of every point and root span of a workload, plus more.
func workloadAttrs(r delivery.Rollout, kindKey string, more ...string) map[string]string {
	m := map[string]string{
		"k8s.namespace.name":          r.Workload.Namespace,
		"deptracker.workload.kind":    r.Workload.Kind,
		"deptracker.workload.name":    r.Workload.Name,
		"deployment.environment.name": "production",
		"k8s.cluster.name":            "kind",
	}
	if kindKey != "" {
		m[kindKey] = r.Workload.Name
	}
	for i := 0; i+1 < len(more); i += 2 {
		m[more[i]] = more[i+1]
	}
	return m
}

// wantPoints are the points of record; the exemplars are the trace IDs of web and pg. Every workload's
// counters start at zero.
func wantPoints(webTrace, pgTrace string) []point {
	webAttrs := workloadAttrs(web(), "k8s.deployment.name")
	pgAttrs := workloadAttrs(pg(), "k8s.statefulset.name")
	apiAttrs := workloadAttrs(api(), "")
	counter := func(metric, unit string, attrs map[string]string, value float64, more ...string) point {
		attrs = maps.Clone(attrs)
		for i := 0; i+1 < len(more); i += 2 {
			attrs[more[i]] = more[i+1]
		}
		return point{Metric: metric, Type: "cumulative counter", Unit: unit, Attrs: attrs, Sum: value}
	}
	ids := func(id string) []string {
		if id == "" {
			return nil
		}
		return []string{id}
	}
	return sortPoints([]point{
		{Metric: MetricDeployments, Type: "cumulative counter", Unit: "{deployment}", Attrs: webAttrs, Sum: 1, Exemplars: ids(webTrace)},
		counter(MetricDeployments, "{deployment}", pgAttrs, 0),
		counter(MetricDeployments, "{deployment}", apiAttrs, 0),
		counter(MetricRolloutsFailed, "{rollout}", webAttrs, 0, "outcome", "failed"),
		counter(MetricRolloutsFailed, "{rollout}", webAttrs, 0, "outcome", "rolled_back"),
		counter(MetricRolloutsFailed, "{rollout}", pgAttrs, 0, "outcome", "rolled_back"),
		counter(MetricRolloutsFailed, "{rollout}", apiAttrs, 0, "outcome", "failed"),
		counter(MetricWithoutCommit, "{rollout}", pgAttrs, 1, "reason", "none"),
		{Metric: MetricLeadTime, Type: "exponential histogram", Unit: "s", Attrs: workloadAttrs(web(), "k8s.deployment.name", "stage", "complete"),
			Count: 1, Sum: 13 * 60, Exemplars: ids(webTrace)},
		{Metric: MetricLeadTime, Type: "exponential histogram", Unit: "s", Attrs: workloadAttrs(web(), "k8s.deployment.name", "stage", "running"),
			Count: 1, Sum: 11 * 60},
		{Metric: MetricRolloutDuration, Type: "exponential histogram", Unit: "s", Attrs: webAttrs, Count: 1, Sum: 3 * 60, Exemplars: ids(webTrace)},
		{Metric: MetricRolloutsFailed, Type: "cumulative counter", Unit: "{rollout}", Attrs: workloadAttrs(pg(), "k8s.statefulset.name", "outcome", "failed"),
			Sum: 1, Exemplars: ids(pgTrace)},
		counter(MetricRolloutsFailed, "{rollout}", apiAttrs, 1, "outcome", "rolled_back"),
		{Metric: MetricTimeToRestore, Type: "exponential histogram", Unit: "s", Attrs: webAttrs, Count: 1, Sum: 73 * 60, Exemplars: ids(webTrace)},
	})
}

// wantTraces are the traces of observations(), one per rollout that ended without completing earlier:
// web's and pg's (api's completion made its trace before; its roll back makes none).
func wantTraces() []rolloutTrace {
	const webRoot, pgRoot = "rollout Deployment/shop/web revision 3", "rollout StatefulSet/db/pg revision 7"
	empty := map[string]string{}
	return []rolloutTrace{
		{Spans: []span{
			{Name: webRoot, Start: commitTime, End: at(13), Attrs: workloadAttrs(web(), "k8s.deployment.name",
				"deptracker.rollout.revision", "3", "deptracker.rollout.outcome", "complete", "vcs.ref.head.revision", sha)},
			{Name: "commit → submitted", Parent: webRoot, Start: commitTime, End: at(10), Attrs: empty},
			{Name: "submitted → first running", Parent: webRoot, Start: at(10), End: at(11), Attrs: empty},
			{Name: "first running → complete", Parent: webRoot, Start: at(11), End: at(13), Attrs: empty},
		}},
		{Spans: []span{
			{Name: pgRoot, Start: at(1), End: at(12), Status: "Error: rollout failed", Attrs: workloadAttrs(pg(), "k8s.statefulset.name",
				"deptracker.rollout.revision", "7", "deptracker.rollout.outcome", "failed")},
			{Name: "submitted → first running", Parent: pgRoot, Start: at(1), End: at(2), Attrs: empty},
			{Name: "first running → failed", Parent: pgRoot, Start: at(2), End: at(12), Attrs: empty},
		}},
	}
}

// TestExportOverGRPC: an in-process OTLP collector over gRPC receives, at the export interval, the points of
// every metric (base-2 exponential histograms, cumulative counters) and exactly one trace per ended
// rollout, with the rollout's timeline as the spans' timestamps; the points of a rollout with a trace carry
// it as an exemplar; and the resource names the tracker.
func TestExportOverGRPC(t *testing.T) {
	rcv, addr := startGRPC(t)
	exp, err := New(t.Context(), Config{Endpoint: addr, Insecure: true, Cluster: "kind", Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	record(t, exp)
	noExemplars := cmpopts.IgnoreFields(point{}, "Exemplars")
	// The periodic export and the batch deliver it, before any Shutdown.
	rcv.waitFor(t, func() string {
		if diff := cmp.Diff(wantPoints("", ""), rcv.gotPoints(), noExemplars); diff != "" {
			return "points (-want +got):\n" + diff
		}
		if n := countSpans(rcv.gotTraces()); n < 7 {
			return "spans: " + strings.Repeat("|", n)
		}
		return ""
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	traces := rcv.gotTraces()
	if diff := cmp.Diff(wantTraces(), traces, cmpopts.IgnoreFields(rolloutTrace{}, "ID")); diff != "" {
		t.Fatalf("traces (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantPoints(traces[0].ID, traces[1].ID), rcv.gotPoints()); diff != "" {
		t.Errorf("points after Shutdown (-want +got):\n%s", diff)
	}
	resources := rcv.gotResources()
	for _, res := range resources {
		if res["service.instance.id"] != resources[0]["service.instance.id"] || res["service.instance.id"] == "" {
			t.Errorf("service.instance.id %q, want one per exporter, %q", res["service.instance.id"], resources[0]["service.instance.id"])
		}
		for k, v := range map[string]string{"service.name": "deployment-tracker", "service.version": version.Version,
			"k8s.cluster.name": "kind", "telemetry.sdk.language": "go"} {
			if res[k] != v {
				t.Errorf("resource %s = %q, want %q (resource %v)", k, res[k], v, res)
			}
		}
	}
}

func countSpans(traces []rolloutTrace) int {
	n := 0
	for _, tr := range traces {
		n += len(tr.Spans)
	}
	return n
}

// TestExportOverHTTP: over OTLP/HTTP (binary protobuf), the metrics and traces go to /v1/metrics and
// /v1/traces under the endpoint's path, and a disabled signal is not sent. Shutdown flushes them.
func TestExportOverHTTP(t *testing.T) {
	tests := []struct {
		name          string
		base          string
		disableTraces bool
		wantPaths     []string
		wantSpans     int
	}{
		{name: "root", wantPaths: []string{"/v1/metrics", "/v1/traces"}, wantSpans: 7},
		{name: "base path", base: "/otlp", wantPaths: []string{"/otlp/v1/metrics", "/otlp/v1/traces"}, wantSpans: 7},
		{name: "metrics only", disableTraces: true, wantPaths: []string{"/v1/metrics"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv, srv := startHTTP(t, tt.base)
			exp, err := New(t.Context(), Config{Endpoint: srv.URL + tt.base, Protocol: ProtocolHTTPProtobuf, Cluster: "kind",
				DisableTraces: tt.disableTraces})
			if err != nil {
				t.Fatal(err)
			}
			record(t, exp)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := exp.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if diff := cmp.Diff(tt.wantPaths, rcv.gotPaths()); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantPoints("", ""), rcv.gotPoints(), cmpopts.IgnoreFields(point{}, "Exemplars")); diff != "" {
				t.Errorf("points (-want +got):\n%s", diff)
			}
			if n := countSpans(rcv.gotTraces()); n != tt.wantSpans {
				t.Errorf("%d spans, want %d", n, tt.wantSpans)
			}
		})
	}
}

// TestShutdownEndsAtTheDeadline: with no collector, Record returns, and Shutdown gives up at the context's
// deadline with an error instead of retrying on.
func TestShutdownEndsAtTheDeadline(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	exp, err := New(t.Context(), Config{Endpoint: addr, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	record(t, exp)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := exp.Shutdown(ctx); err == nil {
		t.Error("Shutdown without a collector: no error")
	}
}

func TestNewRefusesBadConfigs(t *testing.T) {
	tests := []struct {
		name    string
		config  Config
		wantErr string
	}{
		{"protocol", Config{Protocol: "http/json"}, `protocol "http/json"`},
		{"no signal", Config{DisableMetrics: true, DisableTraces: true}, "nothing to export"},
		{"endpoint", Config{Endpoint: "collector"}, `endpoint: "collector" is neither host:port nor an http(s) URL`},
		{"negative interval", Config{Interval: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp, err := New(t.Context(), tt.config)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New error = %v, want it to contain %q", err, tt.wantErr)
			}
			if exp != nil {
				t.Error("New returned an exporter with its error")
			}
		})
	}
}

func TestCheckEndpoint(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		protocol string
		insecure bool
		wantErr  string // "" for valid
	}{
		{name: "empty: the variables", endpoint: ""},
		{name: "host:port", endpoint: "otel-collector.observability:4317"},
		{name: "IPv6", endpoint: "[::1]:4317"},
		{name: "http URL", endpoint: "http://otel-collector:4317"},
		{name: "https URL", endpoint: "https://otel.example.com"},
		{name: "URL with a slash", endpoint: "http://otel-collector:4317/"},
		{name: "HTTP base path", endpoint: "https://otel.example.com/otlp", protocol: ProtocolHTTPProtobuf},
		{name: "insecure host:port", endpoint: "otel-collector:4317", insecure: true},
		{name: "insecure http", endpoint: "http://otel-collector:4318", protocol: ProtocolHTTPProtobuf, insecure: true},
		{name: "host alone", endpoint: "otel-collector", wantErr: "neither host:port nor an http(s) URL"},
		{name: "port alone", endpoint: ":4317", wantErr: "neither host:port"},
		{name: "bad port", endpoint: "otel-collector:http", wantErr: `invalid port "http"`},
		{name: "port out of range", endpoint: "http://otel-collector:70000", wantErr: `invalid port "70000"`},
		{name: "other scheme", endpoint: "grpc://otel-collector:4317", wantErr: "neither host:port nor an http(s) URL"},
		{name: "no host", endpoint: "http:///v1", wantErr: "neither host:port"},
		{name: "credentials", endpoint: "https://user:secret@otel.example.com", wantErr: "credentials do not belong"},
		{name: "query", endpoint: "https://otel.example.com?x=1", wantErr: "query or a fragment"},
		{name: "gRPC with a path", endpoint: "http://otel-collector:4317/otlp", wantErr: "a gRPC endpoint has no path"},
		{name: "https and insecure", endpoint: "https://otel.example.com", insecure: true, wantErr: "contradicts plain text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckEndpoint(tt.endpoint, tt.protocol, tt.insecure)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("CheckEndpoint(%q): %v", tt.endpoint, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("CheckEndpoint(%q) = %v, want an error containing %q", tt.endpoint, err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "secret"):
				t.Errorf("CheckEndpoint(%q) = %v: the error shows the password", tt.endpoint, err)
			}
		})
	}
}

// TestTimeline: the steps of a rollout's trace, with unknown steps left out, a commit ahead of the cluster's
// clock dropped, and no trace for what does not end a rollout or ends one that had completed.
func TestTimeline(t *testing.T) {
	noCommit := web()
	noCommit.CommitTime, noCommit.Commit = time.Time{}, ""
	skewed := web()
	skewed.CommitTime = at(12) // after submitted and first running, before complete: dropped
	notRunning := pg()
	notRunning.FirstRunning = time.Time{}
	noEnd := pg()
	noEnd.Finished = time.Time{}
	tests := []struct {
		name string
		o    delivery.Observation
		want []step
	}{
		{"complete", delivery.Observation{Kind: delivery.KindComplete, Rollout: web()},
			[]step{{"commit", commitTime}, {"submitted", at(10)}, {"first running", at(11)}, {"complete", at(13)}}},
		{"complete without commit", delivery.Observation{Kind: delivery.KindComplete, Rollout: noCommit},
			[]step{{"submitted", at(10)}, {"first running", at(11)}, {"complete", at(13)}}},
		{"commit ahead of the clock", delivery.Observation{Kind: delivery.KindComplete, Rollout: skewed},
			[]step{{"submitted", at(10)}, {"first running", at(11)}, {"complete", at(13)}}},
		{"failed before running", delivery.Observation{Kind: delivery.KindFailed, Rollout: notRunning},
			[]step{{"submitted", at(1)}, {"failed", at(12)}}},
		{"rolled back", delivery.Observation{Kind: delivery.KindRolledBack, Rollout: pg()},
			[]step{{"submitted", at(1)}, {"first running", at(2)}, {"rolled back", at(12)}}},
		{"running: no trace", delivery.Observation{Kind: delivery.KindRunning, Rollout: web()}, nil},
		{"rolled back after complete: traced then", delivery.Observation{Kind: delivery.KindRolledBack, Rollout: api()}, nil},
		{"end unknown", delivery.Observation{Kind: delivery.KindFailed, Rollout: noEnd}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, timeline(tt.o), cmp.AllowUnexported(step{})); diff != "" {
				t.Errorf("timeline (-want +got):\n%s", diff)
			}
		})
	}
}
