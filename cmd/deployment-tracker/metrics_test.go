package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deployment-tracker/deployment-tracker/internal/metrics"
)

// referenceMetrics are the metrics the reference implementation (github.com/github/deployment-tracker,
// pkg/dtmetrics/prom.go) exports, with their types: dashboards and alerts written for it keep working only
// while the tracker exports each under the same name and type.
var referenceMetrics = map[string]string{
	"deptracker_events_processed_ok":                    "counter",
	"deptracker_events_processed_failed":                "counter",
	"deptracker_events_processed_timer":                 "histogram",
	"deptracker_post_deployment_record_timer":           "histogram",
	"deptracker_post_record_ok":                         "counter",
	"deptracker_post_record_no_attestation":             "counter",
	"deptracker_post_record_rate_limited":               "counter",
	"deptracker_post_record_soft_fail":                  "counter",
	"deptracker_post_record_hard_fail":                  "counter",
	"deptracker_post_record_client_error":               "counter",
	"deptracker_post_record_unknown_artifact_cache_hit": "counter",
}

// recorder is a Registerer that keeps what is registered on it.
type recorder struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
	r.Registerer.MustRegister(cs...)
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// TestMetricNames keeps the reference implementation's metric names, and the naming of new ones: the
// deptracker_ prefix, and _total on new counters.
func TestMetricNames(t *testing.T) {
	reg := &recorder{Registerer: prometheus.NewRegistry()}
	metrics.New(reg)
	got := map[string]string{}
	for _, c := range reg.collectors {
		var kind string
		switch c.(type) {
		case prometheus.Gauge, *prometheus.GaugeVec: // before Counter: a Gauge has Inc and Add too
			kind = "gauge"
		case prometheus.Counter, *prometheus.CounterVec:
			kind = "counter"
		case prometheus.Histogram, *prometheus.HistogramVec:
			kind = "histogram"
		default:
			t.Fatalf("collector of type %T", c)
		}
		descs := make(chan *prometheus.Desc, 10)
		c.Describe(descs)
		close(descs)
		for d := range descs {
			m := fqName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("no name in %s", d)
			}
			got[m[1]] = kind
		}
	}
	for name, kind := range referenceMetrics {
		if got[name] != kind {
			t.Errorf("%s: registered as %q, the reference implementation exports a %s", name, got[name], kind)
		}
	}
	for name, kind := range got {
		if !strings.HasPrefix(name, "deptracker_") {
			t.Errorf("%s: not under the deptracker_ prefix", name)
		}
		if _, ref := referenceMetrics[name]; !ref && kind == "counter" && !strings.HasSuffix(name, "_total") {
			t.Errorf("%s: a new counter must end in _total", name)
		}
	}
	if t.Failed() {
		t.Logf("registered: %v", got)
	}
}
