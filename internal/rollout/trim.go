package rollout

import (
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

var _ cache.TransformFunc = Transform

// NewTransform is Transform keeping, besides, the labels named in keepLabels on Deployments, StatefulSets and
// DaemonSets (for example the Slack sink's team label, SLACK_TEAM_LABEL). With no keepLabels it is Transform.
func NewTransform(keepLabels ...string) cache.TransformFunc {
	keep := slices.DeleteFunc(slices.Clone(keepLabels), func(k string) bool { return k == "" })
	return func(obj any) (any, error) { return transform(obj, keep) }
}

// workloadAnnotations are the annotations a trimmed Deployment, StatefulSet or DaemonSet keeps besides the
// metadata.github.com/ ones and those with a prefix of workloadAnnotationPrefixes: its revision, the commit
// the delivery sink (internal/sink/delivery) reads, and the tracker's ignore annotation (the scope).
var workloadAnnotations = []string{podwatch.AnnotationDeploymentRevision, annotationImageRevision, podwatch.AnnotationIgnore}

// annotationImageRevision is the OCI image annotation of the source revision
// (https://github.com/opencontainers/image-spec/blob/main/annotations.md), set on workloads by some pipelines.
const annotationImageRevision = "org.opencontainers.image.revision"

// templateAnnotations are the annotations a trimmed pod template keeps besides the metadata.github.com/ ones:
// the commit of the revision, for the delivery sink (its delivery.deployment-tracker.io/commit and commit-time
// annotations, and the OCI revision).
var templateAnnotations = []string{
	annotationImageRevision, "delivery.deployment-tracker.io/commit", "delivery.deployment-tracker.io/commit-time",
}

// workloadAnnotationPrefixes are the annotation prefixes a trimmed workload keeps for the rollout sinks: the
// Slack sink's channel and opt-out (internal/sink/slack.AnnotationPrefix), the GitHub Deployments sink's
// configuration (internal/sink/githubdeploy.AnnotationPrefix) and the delivery sink's commit
// (internal/sink/delivery.AnnotationPrefix).
var workloadAnnotationPrefixes = []string{"slack.deployment-tracker.io/", "github.deployment-tracker.io/", "delivery.deployment-tracker.io/"}

// The labels a trimmed ControllerRevision or ReplicaSet keeps (the hash its pods carry), and the annotations a
// ReplicaSet keeps besides the metadata.github.com/ ones (its revision number).
var (
	controllerRevisionLabels = []string{podwatch.LabelControllerRevisionHash}
	replicaSetLabels         = []string{
		podwatch.LabelControllerRevisionHash, podwatch.LabelPodTemplateHash, podwatch.LabelRolloutsPodTemplateHash,
	}
	replicaSetAnnotations = []string{podwatch.AnnotationDeploymentRevision, podwatch.AnnotationRolloutRevision}
)

// Transform is the cache transform (cache.TransformFunc, for the controller-runtime cache's ByObject transforms) of
// the workloads the rollout controller watches. It reduces a Deployment, StatefulSet or DaemonSet to what Compute
// (kstatus) and the rollout model read: identity, generation, the revision and metadata.github.com/ annotations,
// the replica counts and update strategy, the pod template's container names and images and its
// metadata.github.com/ and commit annotations (templateAnnotations), and the status kstatus reads (observed
// generation, replica counts, revisions, conditions). A ControllerRevision keeps its identity, controller owner
// reference, controller-revision-hash label and revision number, not its Data (a whole pod template); a ReplicaSet
// keeps its identity, controller owner reference, revision labels and revision annotations only. Labels, managed
// fields, env, volumes, probes and the rest are dropped. The input is never modified; objects of other types are
// returned unchanged.
//
// What kstatus reads is in sigs.k8s.io/cli-utils/pkg/kstatus/status (core.go: deploymentConditions,
// stsConditions, daemonsetConditions; generic.go: deletion timestamp, generation, conditions): keep this in step
// with it, TestComputeTrimmed checks that both give the same Status.
func Transform(obj any) (any, error) { return transform(obj, nil) }

// transform is Transform keeping workloadLabels on workloads.
func transform(obj any, workloadLabels []string) (any, error) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		if o == nil {
			return obj, nil
		}
		return trimDeployment(o, workloadLabels), nil
	case *appsv1.StatefulSet:
		if o == nil {
			return obj, nil
		}
		return trimStatefulSet(o, workloadLabels), nil
	case *appsv1.DaemonSet:
		if o == nil {
			return obj, nil
		}
		return trimDaemonSet(o, workloadLabels), nil
	case *appsv1.ControllerRevision:
		if o == nil {
			return obj, nil
		}
		return &appsv1.ControllerRevision{
			TypeMeta:   o.TypeMeta,
			ObjectMeta: ownedMeta(&o.ObjectMeta, controllerRevisionLabels, nil),
			Revision:   o.Revision,
		}, nil
	case *appsv1.ReplicaSet:
		if o == nil {
			return obj, nil
		}
		return &appsv1.ReplicaSet{
			TypeMeta:   o.TypeMeta,
			ObjectMeta: ownedMeta(&o.ObjectMeta, replicaSetLabels, replicaSetAnnotations),
		}, nil
	}
	return obj, nil
}

func trimDeployment(d *appsv1.Deployment, keepLabels []string) *appsv1.Deployment {
	return &appsv1.Deployment{
		TypeMeta:   d.TypeMeta,
		ObjectMeta: workloadMeta(&d.ObjectMeta, keepLabels),
		Spec: appsv1.DeploymentSpec{
			Replicas:                copyPtr(d.Spec.Replicas),
			ProgressDeadlineSeconds: copyPtr(d.Spec.ProgressDeadlineSeconds),
			Paused:                  d.Spec.Paused,
			Strategy:                appsv1.DeploymentStrategy{Type: d.Spec.Strategy.Type},
			Template:                template(&d.Spec.Template),
		},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration:  d.Status.ObservedGeneration,
			Replicas:            d.Status.Replicas,
			UpdatedReplicas:     d.Status.UpdatedReplicas,
			ReadyReplicas:       d.Status.ReadyReplicas,
			AvailableReplicas:   d.Status.AvailableReplicas,
			UnavailableReplicas: d.Status.UnavailableReplicas,
			Conditions:          slices.Clone(d.Status.Conditions),
		},
	}
}

func trimStatefulSet(s *appsv1.StatefulSet, keepLabels []string) *appsv1.StatefulSet {
	strategy := appsv1.StatefulSetUpdateStrategy{Type: s.Spec.UpdateStrategy.Type}
	// kstatus reads the partition (a rollout with a partition is complete once the pods above it are updated),
	// and the API server defaults it to 0 for RollingUpdate.
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		strategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: copyPtr(ru.Partition)}
	}
	return &appsv1.StatefulSet{
		TypeMeta:   s.TypeMeta,
		ObjectMeta: workloadMeta(&s.ObjectMeta, keepLabels),
		Spec: appsv1.StatefulSetSpec{
			Replicas:       copyPtr(s.Spec.Replicas),
			UpdateStrategy: strategy,
			Template:       template(&s.Spec.Template),
		},
		Status: appsv1.StatefulSetStatus{
			ObservedGeneration: s.Status.ObservedGeneration,
			Replicas:           s.Status.Replicas,
			ReadyReplicas:      s.Status.ReadyReplicas,
			CurrentReplicas:    s.Status.CurrentReplicas,
			UpdatedReplicas:    s.Status.UpdatedReplicas,
			AvailableReplicas:  s.Status.AvailableReplicas,
			CurrentRevision:    s.Status.CurrentRevision,
			UpdateRevision:     s.Status.UpdateRevision,
			Conditions:         slices.Clone(s.Status.Conditions),
		},
	}
}

func trimDaemonSet(d *appsv1.DaemonSet, keepLabels []string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		TypeMeta:   d.TypeMeta,
		ObjectMeta: workloadMeta(&d.ObjectMeta, keepLabels),
		Spec: appsv1.DaemonSetSpec{
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: d.Spec.UpdateStrategy.Type},
			Template:       template(&d.Spec.Template),
		},
		Status: appsv1.DaemonSetStatus{
			ObservedGeneration:     d.Status.ObservedGeneration,
			DesiredNumberScheduled: d.Status.DesiredNumberScheduled,
			CurrentNumberScheduled: d.Status.CurrentNumberScheduled,
			UpdatedNumberScheduled: d.Status.UpdatedNumberScheduled,
			NumberAvailable:        d.Status.NumberAvailable,
			NumberReady:            d.Status.NumberReady,
			NumberUnavailable:      d.Status.NumberUnavailable,
			Conditions:             slices.Clone(d.Status.Conditions),
		},
	}
}

// workloadMeta keeps what a workload's metadata tells: identity, generation (kstatus compares it with the
// observed generation), the deletion timestamp (kstatus: Terminating), the deployment.kubernetes.io/revision
// and metadata.github.com/ annotations, the rollout sinks' (workloadAnnotationPrefixes), and the labels in
// keepLabels. Other labels and owner references are dropped.
func workloadMeta(m *metav1.ObjectMeta, keepLabels []string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		Generation:        m.Generation,
		CreationTimestamp: m.CreationTimestamp,
		DeletionTimestamp: m.DeletionTimestamp.DeepCopy(),
		Labels:            labels(m.Labels, keepLabels),
		Annotations:       annotations(m.Annotations, workloadAnnotations, workloadAnnotationPrefixes...),
	}
}

// labels returns the labels of in named in keep, or nil when there are none.
func labels(in map[string]string, keep []string) map[string]string {
	var out map[string]string
	for _, k := range keep {
		if v, ok := in[k]; ok {
			if out == nil {
				out = make(map[string]string, len(keep))
			}
			out[k] = v
		}
	}
	return out
}

// ownedMeta keeps the metadata of a revision object (ControllerRevision, ReplicaSet): identity, the deletion
// timestamp, the controller owner reference, the labels in keepLabels and the annotations in keepAnnotations
// or with the metadata.github.com/ prefix (the latter only when keepAnnotations is set).
func ownedMeta(m *metav1.ObjectMeta, keepLabels, keepAnnotations []string) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp,
		DeletionTimestamp: m.DeletionTimestamp.DeepCopy(),
	}
	out.Labels = labels(m.Labels, keepLabels)
	if keepAnnotations != nil {
		out.Annotations = annotations(m.Annotations, keepAnnotations)
	}
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
		out.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name, UID: ref.UID, Controller: copyPtr(ref.Controller),
		}}
	}
	return out
}

// annotations returns the metadata.github.com/ annotations, those named in keep and those with one of
// prefixes, or nil when there are none.
func annotations(in map[string]string, keep []string, prefixes ...string) map[string]string {
	var out map[string]string
	for k, v := range in {
		if strings.HasPrefix(k, record.AnnotationPrefix) || slices.Contains(keep, k) || hasAnyPrefix(k, prefixes) {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// template keeps the pod template's metadata.github.com/ annotations (a workload's deployment record metadata
// can be set on its template), its templateAnnotations and its containers' names and images.
func template(t *corev1.PodTemplateSpec) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Annotations: annotations(t.Annotations, templateAnnotations)},
		Spec: corev1.PodSpec{
			InitContainers: podwatch.StripContainers(t.Spec.InitContainers),
			Containers:     podwatch.StripContainers(t.Spec.Containers),
		},
	}
}

func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
