// Package telemetry exports the delivery metrics and one trace per rollout over OTLP (OpenTelemetry), gRPC or
// HTTP, to a collector: a delivery.Exporter beside the Prometheus one.
//
// The metrics are those of Prometheus' /metrics under the OpenTelemetry names that a collector's Prometheus
// exporter turns back into them (deptracker.lead_time with unit s is deptracker_lead_time_seconds), as base-2
// exponential histograms. The trace of a rollout is made when it ends, from the timeline the observation
// carries: a root span from the commit (or the first submission) to the end, and one child span per step.
//
// Record never blocks: the SDK aggregates the metrics in memory, exports them every Config.Interval, and
// queues finished spans for a batch exporter that drops them rather than wait when its queue is full.
// Shutdown flushes both within the context's deadline.
//
// The standard OTEL_EXPORTER_OTLP_* variables are read by the exporters themselves
// (https://opentelemetry.io/docs/specs/otel/protocol/exporter/): headers, certificates, timeout,
// compression, and the endpoints when Config.Endpoint is empty; what Config sets wins over them.
// OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME win over the resource's defaults.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/deployment-tracker/deployment-tracker/internal/delivery"
	"github.com/deployment-tracker/deployment-tracker/internal/version"
)

// ServiceName is the resource's service.name.
const ServiceName = "deployment-tracker"

// scope is the instrumentation scope of the metrics and spans.
const scope = "github.com/deployment-tracker/deployment-tracker/internal/telemetry"

// Config configures New.
type Config struct {
	// Endpoint is the collector: host:port (TLS unless Insecure), or an http(s) URL, the scheme saying whether
	// the connection is plain text; for OTLP/HTTP a base URL to which /v1/metrics and /v1/traces are appended.
	// Empty: the exporters' OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT and
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else their defaults (localhost:4317, localhost:4318).
	Endpoint string
	// Insecure sends plain text, without TLS: an in-cluster collector.
	Insecure bool
	// Protocol is ProtocolGRPC or ProtocolHTTPProtobuf; empty: gRPC.
	Protocol string
	// Headers are sent with every export, instead of OTEL_EXPORTER_OTLP_HEADERS; nil: that variable's.
	Headers map[string]string
	// Cluster is the resource's k8s.cluster.name (CLUSTER); empty: none.
	Cluster string
	// Interval is how often the metrics are exported and how long at most a finished trace waits in the
	// batch; 0: the SDK's defaults (OTEL_METRIC_EXPORT_INTERVAL or 60s, OTEL_BSP_SCHEDULE_DELAY or 5s).
	Interval time.Duration
	// DisableMetrics and DisableTraces turn one signal off: when only the other's endpoint variable is set.
	DisableMetrics, DisableTraces bool
}

// Exporter records delivery observations as OTLP metrics and traces. Its methods are safe for concurrent use.
type Exporter struct {
	meters  *sdkmetric.MeterProvider // nil without metrics
	tracers *sdktrace.TracerProvider // nil without traces
	tracer  trace.Tracer

	leadTime, rolloutDuration, timeToRestore metric.Float64Histogram
	deployments, failed, withoutCommit       metric.Int64Counter
}

var _ delivery.Exporter = (*Exporter)(nil)

// The names, units and descriptions of the metrics: those of the Prometheus exporter (internal/metrics),
// whose names a collector's Prometheus exporter gives back (unit s: _seconds; counters: _total).
const (
	MetricLeadTime        = "deptracker.lead_time"
	MetricRolloutDuration = "deptracker.rollout.duration"
	MetricDeployments     = "deptracker.deployments"
	MetricRolloutsFailed  = "deptracker.rollouts.failed"
	MetricTimeToRestore   = "deptracker.time_to_restore"
	MetricWithoutCommit   = "deptracker.rollouts.without_commit"
)

// The attributes of this tracker's own; the others are OpenTelemetry's semantic conventions (semconv).
const (
	// AttrStage is the stage of a lead time: running or complete (the Prometheus label stage).
	AttrStage = attribute.Key("stage")
	// AttrOutcome is the outcome of a failed rollout: failed or rolled_back (the Prometheus label outcome).
	AttrOutcome = attribute.Key("outcome")
	// AttrReason is why a rollout has no lead time (the Prometheus label reason).
	AttrReason = attribute.Key("reason")
	// AttrWorkloadKind and AttrWorkloadName name the workload of any kind, for one query over every kind;
	// the known kinds also have their k8s.<kind>.name.
	AttrWorkloadKind = attribute.Key("deptracker.workload.kind")
	AttrWorkloadName = attribute.Key("deptracker.workload.name")
	// AttrRevision is the rollout's revision (a Deployment's deployment.kubernetes.io/revision); on spans.
	AttrRevision = attribute.Key("deptracker.rollout.revision")
	// AttrRolloutOutcome is how the rollout of a trace ended: complete, failed or rolled_back; on spans.
	AttrRolloutOutcome = attribute.Key("deptracker.rollout.outcome")
)

// exponential is the histograms' aggregation: base-2 exponential, the SDK's defaults (160 buckets, the scale
// chosen to fit the range). Seconds to weeks fit at scale 3, buckets about 9% wide, without boundaries to
// choose (https://opentelemetry.io/docs/specs/otel/metrics/data-model/#exponentialhistogram).
var exponential = sdkmetric.NewView(
	sdkmetric.Instrument{Name: "deptracker.*", Kind: sdkmetric.InstrumentKindHistogram},
	sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}},
)

// New validates c and starts the exporters. No connection is made yet: the first export makes it, and a
// collector that is down costs failed exports (reported to OpenTelemetry's error handler), never a Record.
func New(ctx context.Context, c Config) (*Exporter, error) {
	switch c.Protocol {
	case "":
		c.Protocol = ProtocolGRPC
	case ProtocolGRPC, ProtocolHTTPProtobuf:
	default:
		return nil, fmt.Errorf("protocol %q is not %s or %s", c.Protocol, ProtocolGRPC, ProtocolHTTPProtobuf)
	}
	if c.DisableMetrics && c.DisableTraces {
		return nil, errors.New("both metrics and traces are disabled: nothing to export")
	}
	if c.Interval < 0 {
		return nil, fmt.Errorf("interval %s is negative", c.Interval)
	}
	ep, err := parseEndpoint(c.Endpoint, c.Protocol, c.Insecure)
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	res, err := newResource(ctx, c.Cluster)
	if err != nil {
		return nil, err
	}
	e := &Exporter{tracer: tracenoop.NewTracerProvider().Tracer(scope)}
	var meter metric.Meter = metricnoop.NewMeterProvider().Meter(scope)
	if !c.DisableMetrics {
		exp, err := metricExporter(ctx, c, ep)
		if err != nil {
			return nil, fmt.Errorf("OTLP metric exporter: %w", err)
		}
		var opts []sdkmetric.PeriodicReaderOption
		if c.Interval > 0 {
			opts = append(opts, sdkmetric.WithInterval(c.Interval))
		}
		e.meters = sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithView(exponential),
			sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, opts...)))
		meter = e.meters.Meter(scope, metric.WithInstrumentationVersion(version.Version))
	}
	if !c.DisableTraces {
		exp, err := traceExporter(ctx, c, ep)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("OTLP trace exporter: %w", err), e.shutdownMeters(ctx))
		}
		var opts []sdktrace.BatchSpanProcessorOption
		if c.Interval > 0 {
			opts = append(opts, sdktrace.WithBatchTimeout(c.Interval))
		}
		e.tracers = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp, opts...))
		e.tracer = e.tracers.Tracer(scope, trace.WithInstrumentationVersion(version.Version))
	}
	if err := e.instruments(meter); err != nil {
		return nil, errors.Join(err, e.Shutdown(ctx))
	}
	return e, nil
}

// newResource is the tracker as OpenTelemetry's resource: service.name, service.version, k8s.cluster.name,
// the SDK's own attributes, and OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, which win. service.instance.id
// is a random UUID, as the semantic conventions advise: the metrics are cumulative from the process' start, and
// two processes (a restart, a new leader) must not write the same series.
func newResource(ctx context.Context, cluster string) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{semconv.ServiceName(ServiceName), semconv.ServiceVersion(version.Version),
		semconv.ServiceInstanceID(uuid.NewString())}
	if cluster != "" {
		attrs = append(attrs, semconv.K8SClusterName(cluster))
	}
	res, err := resource.New(ctx, resource.WithSchemaURL(semconv.SchemaURL), resource.WithAttributes(attrs...),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("OpenTelemetry resource (OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	return res, nil
}

// instruments makes the metrics on meter.
func (e *Exporter) instruments(meter metric.Meter) error {
	var errs [6]error
	e.leadTime, errs[0] = meter.Float64Histogram(MetricLeadTime, metric.WithUnit("s"),
		metric.WithDescription("Commit to the revision's first pod Running (stage running) and to the rollout Current (stage complete)."))
	e.rolloutDuration, errs[1] = meter.Float64Histogram(MetricRolloutDuration, metric.WithUnit("s"),
		metric.WithDescription("First pod of the revision submitted (admission) to the rollout Current."))
	e.timeToRestore, errs[2] = meter.Float64Histogram(MetricTimeToRestore, metric.WithUnit("s"),
		metric.WithDescription("A workload's first failed rollout to its next Current."))
	e.deployments, errs[3] = meter.Int64Counter(MetricDeployments, metric.WithUnit("{deployment}"),
		metric.WithDescription("Rollouts that became Current (deployment frequency)."))
	e.failed, errs[4] = meter.Int64Counter(MetricRolloutsFailed, metric.WithUnit("{rollout}"),
		metric.WithDescription("Rollouts that Failed or were rolled back (change failure rate), by outcome."))
	e.withoutCommit, errs[5] = meter.Int64Counter(MetricWithoutCommit, metric.WithUnit("{rollout}"),
		metric.WithDescription("Rollouts observed without a lead time, by reason."))
	if err := errors.Join(errs[:]...); err != nil {
		return fmt.Errorf("OpenTelemetry instruments: %w", err)
	}
	return nil
}

// Record records o: its durations and counts, and, when it ends a rollout, the rollout's trace. The metrics
// of a trace carry it as an exemplar. A workload's counters start at zero with its first observation, as
// Prometheus' do, so that a change failure rate reads 0, not "no data". It does not block.
func (e *Exporter) Record(ctx context.Context, o delivery.Observation) {
	attrs := attributes(o.Rollout)
	e.deployments.Add(ctx, 0, metric.WithAttributes(attrs...))
	e.failed.Add(ctx, 0, metric.WithAttributes(with(attrs, AttrOutcome.String(string(delivery.KindFailed)))...))
	e.failed.Add(ctx, 0, metric.WithAttributes(with(attrs, AttrOutcome.String(string(delivery.KindRolledBack)))...))
	ctx = e.traceRollout(ctx, o, attrs)
	if d, ok := o.LeadTime(); ok {
		e.leadTime.Record(ctx, d.Seconds(), metric.WithAttributes(with(attrs, AttrStage.String(o.Stage()))...))
	}
	switch o.Kind {
	case delivery.KindComplete:
		set := metric.WithAttributes(attrs...)
		e.deployments.Add(ctx, 1, set)
		if d, ok := o.RolloutDuration(); ok {
			e.rolloutDuration.Record(ctx, d.Seconds(), set)
		}
		if d, ok := o.TimeToRestore(); ok {
			e.timeToRestore.Record(ctx, d.Seconds(), set)
		}
	case delivery.KindFailed, delivery.KindRolledBack:
		e.failed.Add(ctx, 1, metric.WithAttributes(with(attrs, AttrOutcome.String(string(o.Kind)))...))
	}
}

// RecordWithoutCommit counts r, observed without a lead time, by reason (a metrics.WithoutCommit* value):
// deptracker.rollouts.without_commit. It makes Exporter a WithoutCommitRecorder of the delivery sink.
func (e *Exporter) RecordWithoutCommit(ctx context.Context, r delivery.Rollout, reason string) {
	e.withoutCommit.Add(ctx, 1, metric.WithAttributes(with(attributes(r), AttrReason.String(reason))...))
}

// Shutdown exports what is left, metrics and spans at once, and stops the exporters; it returns when done
// or when ctx ends. Record after Shutdown records nothing.
func (e *Exporter) Shutdown(ctx context.Context) error {
	var traces error
	var wg sync.WaitGroup
	if e.tracers != nil {
		wg.Go(func() {
			if err := e.tracers.Shutdown(ctx); err != nil {
				traces = fmt.Errorf("flush OpenTelemetry traces: %w", err)
			}
		})
	}
	metrics := e.shutdownMeters(ctx)
	wg.Wait()
	return errors.Join(metrics, traces)
}

func (e *Exporter) shutdownMeters(ctx context.Context) error {
	if e.meters == nil {
		return nil
	}
	if err := e.meters.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush OpenTelemetry metrics: %w", err)
	}
	return nil
}

// with is attrs and more, without changing attrs' backing array.
func with(attrs []attribute.KeyValue, more ...attribute.KeyValue) []attribute.KeyValue {
	return append(attrs[:len(attrs):len(attrs)], more...)
}
