package githubdeploy

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ghv1 "github.com/deployment-tracker/deployment-tracker/internal/apis/github/v1alpha1"
	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink"
)

// Event reasons.
const (
	EventDeployed = "GitHubDeploymentStatus"
	EventFailed   = "GitHubDeploymentFailed"
)

// ObjectReporter shows outcomes in Kubernetes: on the GitHubDeployment a target comes from (its status:
// phase, ref, deployment id, last state, conditions Ready and RefResolved) and as Events, on the
// GitHubDeployment or, for annotated workloads, on the workload (failures only, so that a healthy workload's
// Events stay quiet).
type ObjectReporter struct {
	// Client writes the GitHubDeployments' status.
	Client client.Client
	// Events records Events; nil: none.
	Events record.EventRecorder
	// Log receives the errors of status writes.
	Log logr.Logger
	// Now is the clock of the conditions (default time.Now).
	Now func() time.Time
}

var _ Reporter = ObjectReporter{}

// Report implements Reporter.
func (o ObjectReporter) Report(ctx context.Context, w owner.Workload, t Target, rep Report) {
	if rep.Err != nil && sink.Classify(rep.Err) == sink.ClassRetryable {
		return // transient: retried, and said when it stops being transient
	}
	if t.Object != nil {
		o.object(ctx, *t.Object, rep)
		return
	}
	if o.Events == nil || rep.Err == nil {
		return
	}
	ref := &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: schema.GroupVersion{Group: w.Group, Version: versionOf(w.Group)}.String(), Kind: w.Kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: w.Namespace, Name: w.Name, UID: t.WorkloadUID},
	}
	o.Events.Event(ref, corev1.EventTypeWarning, EventFailed, truncate(rep.Reason+": "+rep.Err.Error(), 1024))
}

func (o ObjectReporter) object(ctx context.Context, key client.ObjectKey, rep Report) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	var g ghv1.GitHubDeployment
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := o.Client.Get(ctx, key, &g); err != nil {
			return err
		}
		ready := metav1.Condition{Type: ghv1.ConditionReady, Status: metav1.ConditionTrue, Reason: ghv1.ReasonSynced,
			Message: "GitHub accepted the deployment status " + rep.State, ObservedGeneration: g.Generation}
		refCond := metav1.Condition{Type: ghv1.ConditionRefResolved, Status: metav1.ConditionTrue, Reason: ghv1.ReasonSynced,
			Message: "ref " + rep.Ref, ObservedGeneration: g.Generation}
		if rep.Err != nil {
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, rep.Reason, truncate(rep.Err.Error(), 1024)
			if rep.Reason == ghv1.ReasonExtractFailed {
				refCond.Status, refCond.Reason, refCond.Message = metav1.ConditionFalse, rep.Reason, ready.Message
			}
		}
		g.Status.ObservedGeneration = g.Generation
		if rep.Phase == rollout.PhaseSuperseded {
			return nil // an older rollout made inactive: the status shows the current one
		}
		if rep.Err == nil {
			g.Status.Phase, g.Status.LastState = string(rep.Phase), rep.State
			g.Status.LastSent = &metav1.Time{Time: now()}
		}
		if rep.Ref != "" {
			g.Status.Ref = rep.Ref
		}
		if rep.DeploymentID != 0 {
			g.Status.DeploymentID = rep.DeploymentID
		}
		meta.SetStatusCondition(&g.Status.Conditions, ready)
		if rep.Ref != "" || rep.Reason == ghv1.ReasonExtractFailed {
			meta.SetStatusCondition(&g.Status.Conditions, refCond)
		}
		return o.Client.Status().Update(ctx, &g)
	})
	if err != nil {
		o.Log.Error(err, "Cannot write the status of a GitHubDeployment", "githubDeployment", key.String())
		return
	}
	if o.Events == nil {
		return
	}
	if rep.Err != nil {
		o.Events.Event(&g, corev1.EventTypeWarning, EventFailed, truncate(rep.Reason+": "+rep.Err.Error(), 1024))
	} else {
		o.Events.Eventf(&g, corev1.EventTypeNormal, EventDeployed, "Deployment %d of %s: %s (rollout %s)", rep.DeploymentID, rep.Ref, rep.State, rep.Phase)
	}
}
