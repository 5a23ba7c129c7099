package flux

import (
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// The Flux APIs read, as unstructured objects.
var (
	// KustomizationGVR is Flux's Kustomization (https://fluxcd.io/flux/components/kustomize/kustomizations/).
	KustomizationGVR = schema.GroupVersionResource{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Resource: "kustomizations"}
	// GitRepositoryGVR is Flux's GitRepository (https://fluxcd.io/flux/components/source/gitrepositories/).
	GitRepositoryGVR = schema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}
)

// GitRepositoryKind is the kind of spec.sourceRef that names a GitRepository.
const GitRepositoryKind = "GitRepository"

// The annotations on a Kustomization that the tracker reads.
const (
	// AnnotationRepository names the GitHub repository of the applied commits ("OWNER/REPO" or a URL), for a
	// source that is not a GitRepository on GitHub (an OCIRepository built from a GitHub repository, a Bucket).
	AnnotationRepository = "delivery.deployment-tracker.io/repository"
	// AnnotationCommitTime is the commit time itself (RFC 3339): when set, no lookup is made. A pipeline that
	// sets it must update it with each revision.
	AnnotationCommitTime = "delivery.deployment-tracker.io/commit-time"
)

// The Ready condition of a successful reconciliation, as kustomize-controller writes it
// (https://fluxcd.io/flux/components/kustomize/kustomizations/#ready-kustomization).
const (
	ConditionReady                = "Ready"
	ReasonReconciliationSucceeded = "ReconciliationSucceeded"
	conditionStatusTrue           = "True"
)

// Kustomization is what the tracker reads of a Flux Kustomization.
type Kustomization struct {
	Namespace, Name string
	// Repository and CommitTime are the annotations AnnotationRepository and AnnotationCommitTime.
	Repository, CommitTime string
	// Source is spec.sourceRef.
	Source SourceRef
	// LastAppliedRevision and LastAppliedOriginRevision are the status fields of the same names.
	LastAppliedRevision, LastAppliedOriginRevision string
	// Ready is the Ready condition; nil when there is none.
	Ready *Condition
}

// SourceRef is a Kustomization's spec.sourceRef. Namespace defaults to the Kustomization's.
type SourceRef struct {
	APIVersion, Kind, Name, Namespace string
}

// Condition is the part of a status condition the tracker reads.
type Condition struct {
	Status, Reason, Message string
	LastTransitionTime      time.Time
}

// Key is the Kustomization's namespace and name.
func (k Kustomization) Key() types.NamespacedName {
	return types.NamespacedName{Namespace: k.Namespace, Name: k.Name}
}

// FromUnstructured reads a Kustomization. Fields of the wrong type read as empty: the object is someone
// else's, and a malformed one is not applied anyway.
func FromUnstructured(u *unstructured.Unstructured) Kustomization {
	str := func(fields ...string) string {
		s, _, _ := unstructured.NestedString(u.Object, fields...)
		return s
	}
	k := Kustomization{
		Namespace:                 u.GetNamespace(),
		Name:                      u.GetName(),
		Repository:                strings.TrimSpace(u.GetAnnotations()[AnnotationRepository]),
		CommitTime:                strings.TrimSpace(u.GetAnnotations()[AnnotationCommitTime]),
		Source:                    SourceRef{APIVersion: str("spec", "sourceRef", "apiVersion"), Kind: str("spec", "sourceRef", "kind"), Name: str("spec", "sourceRef", "name"), Namespace: str("spec", "sourceRef", "namespace")},
		LastAppliedRevision:       str("status", "lastAppliedRevision"),
		LastAppliedOriginRevision: str("status", "lastAppliedOriginRevision"),
	}
	if k.Source.Namespace == "" {
		k.Source.Namespace = k.Namespace
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != ConditionReady {
			continue
		}
		get := func(f string) string { s, _ := m[f].(string); return s }
		cond := &Condition{Status: get("status"), Reason: get("reason"), Message: get("message")}
		if t, err := time.Parse(time.RFC3339, get("lastTransitionTime")); err == nil {
			cond.LastTransitionTime = t
		}
		k.Ready = cond
		break
	}
	return k
}

// Applied is a revision Flux applied.
type Applied struct {
	// Revision is status.lastAppliedRevision: what the ledger remembers.
	Revision string
	// Commit is the git SHA of the revision, or of its origin for an OCI artifact built from Git
	// (status.lastAppliedOriginRevision); "" when neither names a git commit.
	Commit string
	// At is when the Ready condition turned True with reason ReconciliationSucceeded.
	At time.Time
}

// Applied returns the revision the Kustomization applied, when it is Ready after a successful reconciliation
// (Ready True, reason ReconciliationSucceeded, with a transition time) and has an applied revision.
//
// kustomize-controller sets Ready to Unknown (reason Progressing) when it starts reconciling a new revision,
// and to True once it is applied, so the transition time is when the revision was applied. A Kustomization that
// is reconciled again at the same revision moves the transition time but not the revision, which the ledger
// has seen already.
func (k Kustomization) Applied() (Applied, bool) {
	r := k.Ready
	if k.LastAppliedRevision == "" || r == nil || r.Status != conditionStatusTrue || r.Reason != ReasonReconciliationSucceeded || r.LastTransitionTime.IsZero() {
		return Applied{}, false
	}
	a := Applied{Revision: k.LastAppliedRevision, At: r.LastTransitionTime}
	if _, sha, ok := ParseRevision(k.LastAppliedRevision); ok {
		a.Commit = sha
	} else if _, sha, ok := ParseRevision(k.LastAppliedOriginRevision); ok {
		a.Commit = sha
	}
	return a, true
}

// Trim is the informer's transform: it keeps only what FromUnstructured reads (and the identity the informer
// needs), so that the cache holds a few hundred bytes per Kustomization instead of its whole object with the
// last-applied annotation, managed fields and inventory-sized status.
func Trim(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil // a DeletedFinalStateUnknown tombstone
	}
	out := &unstructured.Unstructured{Object: map[string]any{}}
	out.SetAPIVersion(u.GetAPIVersion())
	out.SetKind(u.GetKind())
	out.SetNamespace(u.GetNamespace())
	out.SetName(u.GetName())
	out.SetUID(u.GetUID())
	out.SetResourceVersion(u.GetResourceVersion())
	out.SetGeneration(u.GetGeneration())
	ann := map[string]string{}
	for _, k := range []string{AnnotationRepository, AnnotationCommitTime} {
		if v, ok := u.GetAnnotations()[k]; ok {
			ann[k] = v
		}
	}
	if len(ann) > 0 {
		out.SetAnnotations(ann)
	}
	if ref, ok, _ := unstructured.NestedMap(u.Object, "spec", "sourceRef"); ok {
		_ = unstructured.SetNestedMap(out.Object, ref, "spec", "sourceRef")
	}
	for _, f := range []string{"lastAppliedRevision", "lastAppliedOriginRevision"} {
		if v, ok, _ := unstructured.NestedString(u.Object, "status", f); ok {
			_ = unstructured.SetNestedField(out.Object, v, "status", f)
		}
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == ConditionReady {
			_ = unstructured.SetNestedSlice(out.Object, []any{m}, "status", "conditions")
			break
		}
	}
	return out, nil
}
