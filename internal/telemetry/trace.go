package telemetry

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/deployment-tracker/deployment-tracker/internal/delivery"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
)

// kindNames are the semantic-convention name attributes of the workload kinds that have one
// (https://opentelemetry.io/docs/specs/semconv/resource/k8s/).
var kindNames = map[owner.Workload]attribute.Key{
	{Group: "apps", Kind: "Deployment"}:  semconv.K8SDeploymentNameKey,
	{Group: "apps", Kind: "StatefulSet"}: semconv.K8SStatefulSetNameKey,
	{Group: "apps", Kind: "DaemonSet"}:   semconv.K8SDaemonSetNameKey,
	{Group: "apps", Kind: "ReplicaSet"}:  semconv.K8SReplicaSetNameKey,
	{Group: "batch", Kind: "Job"}:        semconv.K8SJobNameKey,
	{Group: "batch", Kind: "CronJob"}:    semconv.K8SCronJobNameKey,
	{Group: "", Kind: "Pod"}:             semconv.K8SPodNameKey,
}

// attributes are the attributes of every metric point and rollout span: the workload, its environment and
// cluster. All bounded: no revision, commit or pod.
func attributes(r delivery.Rollout) []attribute.KeyValue {
	w := r.Workload
	attrs := []attribute.KeyValue{
		semconv.K8SNamespaceName(w.Namespace),
		AttrWorkloadKind.String(w.Kind),
		AttrWorkloadName.String(w.Name),
	}
	if key, ok := kindNames[owner.Workload{Group: w.Group, Kind: w.Kind}]; ok {
		attrs = append(attrs, key.String(w.Name))
	}
	return append(attrs, semconv.DeploymentEnvironmentNameKey.String(r.Environment), semconv.K8SClusterName(r.Cluster))
}

// step is one point of a rollout's timeline.
type step struct {
	name string
	at   time.Time
}

// timeline is the steps of the trace of o, oldest first: commit, submitted, first running, complete, and the
// end, failed or rolled back, of those known. nil when o makes no trace: it does not end the rollout, its end
// is unknown, or the rollout completed earlier (that observation made the trace, one per rollout). A step
// after the next one (a commit time ahead of the cluster's clock) is left out rather than drawn backwards.
func timeline(o delivery.Observation) []step {
	r := o.Rollout
	end := step{"complete", r.Completed}
	switch o.Kind {
	case delivery.KindComplete:
	case delivery.KindFailed, delivery.KindRolledBack:
		if !r.Completed.IsZero() {
			return nil
		}
		end = step{"failed", r.Finished}
		if o.Kind == delivery.KindRolledBack {
			end.name = "rolled back"
		}
	default:
		return nil
	}
	if end.at.IsZero() {
		return nil
	}
	before := []step{{"commit", r.CommitTime}, {"submitted", r.Submitted}, {"first running", r.FirstRunning}}
	steps := []step{end}
	for i := len(before) - 1; i >= 0; i-- {
		if s := before[i]; !s.at.IsZero() && !s.at.After(steps[0].at) {
			steps = append([]step{s}, steps...)
		}
	}
	return steps
}

// traceRollout makes the trace of o, when it ends a rollout: a root span "rollout <kind>/<namespace>/<name>
// revision <n>" over the timeline, and a child span "<step> → <next step>" for each step, with the
// timeline's timestamps. A failed or rolled back rollout's root span has the status Error. It returns ctx
// with the root span, for the metrics' exemplars.
func (e *Exporter) traceRollout(ctx context.Context, o delivery.Observation, attrs []attribute.KeyValue) context.Context {
	steps := timeline(o)
	if len(steps) == 0 {
		return ctx
	}
	r := o.Rollout
	attrs = with(attrs, AttrRevision.Int64(r.Revision), AttrRolloutOutcome.String(string(o.Kind)))
	if r.Commit != "" {
		attrs = append(attrs, semconv.VCSRefHeadRevision(r.Commit))
	}
	w := r.Workload
	ctx, root := e.tracer.Start(ctx, fmt.Sprintf("rollout %s/%s/%s revision %d", w.Kind, w.Namespace, w.Name, r.Revision),
		trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindInternal), trace.WithTimestamp(steps[0].at),
		trace.WithAttributes(attrs...))
	for i := 1; i < len(steps); i++ {
		_, span := e.tracer.Start(ctx, steps[i-1].name+" → "+steps[i].name, trace.WithTimestamp(steps[i-1].at))
		span.End(trace.WithTimestamp(steps[i].at))
	}
	switch o.Kind {
	case delivery.KindFailed:
		root.SetStatus(codes.Error, "rollout failed")
	case delivery.KindRolledBack:
		root.SetStatus(codes.Error, "rollout rolled back")
	}
	root.End(trace.WithTimestamp(steps[len(steps)-1].at))
	return ctx
}
