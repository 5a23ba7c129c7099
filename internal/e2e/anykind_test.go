package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// installCRD installs a namespaced CRD that accepts any object of group/kind (plural), and waits until it is
// served.
func installCRD(t *testing.T, group, kind, plural string) schema.GroupVersionKind {
	t.Helper()
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": plural + "." + group},
		"spec": map[string]any{
			"group": group,
			"scope": "Namespaced",
			"names": map[string]any{"kind": kind, "plural": plural, "singular": plural[:len(plural)-1], "listKind": kind + "List"},
			"versions": []any{map[string]any{
				"name": "v1alpha1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object", "x-kubernetes-preserve-unknown-fields": true,
				}},
			}},
		},
	}}
	if err := env.Client.Create(context.Background(), crd); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating CRD %s: %v", crd.GetName(), err)
	}
	gvk := schema.GroupVersionKind{Group: group, Version: "v1alpha1", Kind: kind}
	waitFor(t, "CRD "+crd.GetName()+" served", func() bool {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(gvk.GroupVersion().WithKind(kind + "List"))
		return env.Client.List(context.Background(), l) == nil
	})
	return gvk
}

// createCustom creates an object of gvk in ns and returns it (with its UID).
func createCustom(t *testing.T, gvk schema.GroupVersionKind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{}}}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(ns)
	u.SetName(name)
	mustCreate(t, u)
	return u
}

func controllerRef(u *unstructured.Unstructured) []metav1.OwnerReference {
	return []metav1.OwnerReference{{
		APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Name: u.GetName(), UID: u.GetUID(),
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}}
}

// argoReplicaSet is a ReplicaSet as Argo Rollouts creates it for revision rev of Rollout ro.
func argoReplicaSet(ro *unstructured.Unstructured, hash string, rev, replicas int32, image string) *appsv1.ReplicaSet {
	labels := map[string]string{"app": ro.GetName(), "rollouts-pod-template-hash": hash}
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ro.GetNamespace(), Name: ro.GetName() + "-" + hash, Labels: labels,
			Annotations:     map[string]string{"rollout.argoproj.io/revision": fmt.Sprint(rev)},
			OwnerReferences: controllerRef(ro),
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podTemplate(labels, container("app", image)),
		},
	}
}

// TestArgoRollout: ReplicaSets controlled by an argoproj.io Rollout (read through the shipped aggregated
// ClusterRole) are one deployment name across revisions; the current revision's digest replaces the old one,
// and a rollback (an old ReplicaSet renumbered) brings it back.
func TestArgoRollout(t *testing.T) {
	ns := newNamespace(t)
	gvk := installCRD(t, "argoproj.io", "Rollout", "rollouts")
	ro := createCustom(t, gvk, ns, "web")
	v1, v2 := "ghcr.io/octo-org/argo:1", "ghcr.io/octo-org/argo:2"
	name := ns + "/web/app"
	rs1 := argoReplicaSet(ro, "6c5d8f7b9", 1, 2, v1)
	mustCreate(t, rs1)
	waitRecords(t, ns, "revision 1", func(rs []record.Record) bool { r, _ := last(rs, name); return r.Digest == digestOf(t, v1) })

	// The canary: revision 2 runs beside revision 1 for a while, then revision 1 is scaled down and kept.
	rs2 := argoReplicaSet(ro, "7f8e9d0a1", 2, 1, v2)
	mustCreate(t, rs2)
	waitRecords(t, ns, "revision 2", func(rs []record.Record) bool { r, _ := last(rs, name); return r.Digest == digestOf(t, v2) })
	update(t, rs1, func(rs *appsv1.ReplicaSet) { rs.Spec.Replicas = ptr.To[int32](0) })
	update(t, rs2, func(rs *appsv1.ReplicaSet) { rs.Spec.Replicas = ptr.To[int32](2) })
	waitRunning(t, ns, map[string]string{"app": "web"}, 2)
	stayCount(t, ns, 2)

	// Rollback: Argo renumbers the old ReplicaSet and scales it up again.
	update(t, rs1, func(rs *appsv1.ReplicaSet) {
		rs.Annotations["rollout.argoproj.io/revision"] = "3"
		rs.Spec.Replicas = ptr.To[int32](2)
	})
	waitRecords(t, ns, "the rollback", func(rs []record.Record) bool { r, n := last(rs, name); return r.Digest == digestOf(t, v1) && n == 3 })
	update(t, rs2, func(rs *appsv1.ReplicaSet) { rs.Spec.Replicas = ptr.To[int32](0) })
	waitRunning(t, ns, map[string]string{"app": "web"}, 2)
	rs := waitCount(t, ns, 3)
	for _, r := range rs {
		if r.DeploymentName != name || r.Status != record.StatusDeployed {
			t.Errorf("record %+v: want only deployed records of %s", r, name)
		}
	}
	if n := testutil.ToFloat64(tracker.app.Metrics.OwnerAccessDenied.WithLabelValues("Rollout.argoproj.io")); n != 0 {
		t.Errorf("access to Rollouts refused %v times; the shipped ClusterRole grants it", n)
	}
	mustDelete(t, ro) // the garbage collector deletes its ReplicaSets and their pods
	rs = waitCount(t, ns, 4)
	if rs[3].Status != record.StatusDecommissioned || rs[3].Digest != digestOf(t, v1) {
		t.Errorf("after the Rollout's deletion: %+v, want %s decommissioned", rs[3], digestOf(t, v1))
	}
}

// TestUnwatchedKindSinglePod: a single-pod workload of a custom kind (a database operator's Cluster, readable
// through a ClusterRole the user adds with the aggregation label) whose pod is replaced three times posts one
// record and no decommission; deleting the Cluster decommissions it.
func TestUnwatchedKindSinglePod(t *testing.T) {
	ns := newNamespace(t)
	gvk := installCRD(t, "postgresql.cnpg.io", "Cluster", "clusters")
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-deployment-tracker-owners-cnpg",
			Labels: map[string]string{"deployment-tracker.io/aggregate-to-owners": "true"}},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"postgresql.cnpg.io"}, Resources: []string{"clusters"}, Verbs: []string{"get"}}},
	}
	if err := env.Client.Create(context.Background(), role); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating the ClusterRole: %v", err)
	}
	waitFor(t, "the aggregated ClusterRole to grant clusters", func() bool {
		agg := &rbacv1.ClusterRole{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Name: "deployment-tracker-owners"}, agg); err != nil {
			return false
		}
		for _, r := range agg.Rules {
			for _, res := range r.Resources {
				if res == "clusters" {
					return true
				}
			}
		}
		return false
	})
	pg := createCustom(t, gvk, ns, "pg")
	image := "ghcr.io/octo-org/postgres:16"
	for i := 1; i <= 4; i++ {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("pg-%d", i), Labels: map[string]string{"app": "pg"},
				OwnerReferences: controllerRef(pg)},
			Spec: corev1.PodSpec{Containers: []corev1.Container{container("postgres", image)}, TerminationGracePeriodSeconds: ptr.To[int64](0)},
		}
		mustCreate(t, pod)
		waitRunning(t, ns, map[string]string{"app": "pg"}, 1)
		rs := waitCount(t, ns, 1)
		if diff := cmp.Diff(want(ns, "pg", "postgres", "ghcr.io/octo-org/postgres", digestOf(t, image), "16", record.StatusDeployed), rs[0]); diff != "" {
			t.Fatalf("record after pod %d (-want +got):\n%s", i, diff)
		}
		if i < 4 {
			mustDelete(t, pod)
			waitRunning(t, ns, map[string]string{"app": "pg"}, 0)
		}
	}
	stayCount(t, ns, 1)
	if n := testutil.ToFloat64(tracker.app.Metrics.OwnerAccessDenied.WithLabelValues("Cluster.postgresql.cnpg.io")); n != 0 {
		t.Errorf("access to Clusters refused %v times; the aggregated ClusterRole grants it", n)
	}
	mustDelete(t, pg) // the garbage collector deletes its pod
	rs := waitCount(t, ns, 2)
	if rs[1].Status != record.StatusDecommissioned {
		t.Errorf("after the Cluster's deletion: %+v, want decommissioned", rs[1])
	}
}
