package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/flux"
	"github.com/deployment-tracker/deployment-tracker/internal/githubtest"
)

// fluxDiscoveryInterval is how often the Flux test's tracker looks for the Kustomization API.
const fluxDiscoveryInterval = 500 * time.Millisecond

// TestFluxLeadTime: with Flux's Kustomization and GitRepository CRDs installed after the tracker started (the
// discovery recheck finds them), a Kustomization whose GitRepository is a repository of the GitHub fake applies
// a commit of a known date: the apply lead time is observed once, equal to the known difference; after a restart
// it is not observed again, even when the Kustomization is reconciled again at the same revision; a new
// revision is observed once more.
func TestFluxLeadTime(t *testing.T) {
	current, restart := withTracker(t, trackerSettings{args: []string{"-flux-discovery-interval=" + fluxDiscoveryInterval.String()}})
	installFluxCRDs(t)
	ns := newNamespace(t)

	repo := "fleet-" + ns
	sha1, sha2 := randomSHA(t), randomSHA(t)
	committed1 := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	committed2 := committed1.Add(3 * time.Hour)
	if err := gh.AddRepo(repo, githubtest.Repo{
		Branches: map[string]string{"main": sha1},
		Commits: map[string]githubtest.Commit{
			// The committer date counts, not the author date.
			sha1: {Message: "first", AuthorDate: committed1.Add(-time.Hour), CommitterDate: committed1},
		},
	}); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, fluxObject("source.toolkit.fluxcd.io/v1", "GitRepository", ns, "fleet", map[string]any{
		"url": fmt.Sprintf("https://github.com/%s/%s.git", gh.Org(), repo), "interval": "1m", "ref": map[string]any{"branch": "main"},
	}))
	k := fluxObject("kustomize.toolkit.fluxcd.io/v1", "Kustomization", ns, "apps", map[string]any{
		"interval": "10m", "path": "./apps", "prune": true, "sourceRef": map[string]any{"kind": "GitRepository", "name": "fleet"},
	})
	mustCreate(t, k)

	// Flux applies the first commit 7m30s after it was made.
	applied1 := committed1.Add(7*time.Minute + 30*time.Second)
	setApplied(t, k, "main@sha1:"+sha1, applied1)
	waitLeadTimes(t, current(), ns, 1, (7*time.Minute + 30*time.Second).Seconds())
	stayLeadTimes(t, current(), ns, 1)
	if got := fluxLedger(t)[ns+".apps"]; got == "" {
		t.Errorf("the Flux ledger has no entry for %s/apps", ns)
	}

	restart(nil)
	// Reconciled again at the same revision: Ready's transition time moves, the revision does not.
	setApplied(t, k, "main@sha1:"+sha1, applied1.Add(10*time.Minute))
	stayLeadTimes(t, current(), ns, 0)

	if err := gh.AddCommit(repo, sha2, githubtest.Commit{Message: "second", CommitterDate: committed2}); err != nil {
		t.Fatal(err)
	}
	setApplied(t, k, "main@sha1:"+sha2, committed2.Add(90*time.Second))
	waitLeadTimes(t, current(), ns, 1, 90)
	stayLeadTimes(t, current(), ns, 1)
}

// installFluxCRDs installs minimal Kustomization and GitRepository CRDs (any fields, a status subresource),
// removed when t ends.
func installFluxCRDs(t *testing.T) {
	t.Helper()
	for _, c := range []struct{ group, kind, plural string }{
		{flux.KustomizationGVR.Group, "Kustomization", flux.KustomizationGVR.Resource},
		{flux.GitRepositoryGVR.Group, "GitRepository", flux.GitRepositoryGVR.Resource},
	} {
		crd := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1",
			"kind":       "CustomResourceDefinition",
			"metadata":   map[string]any{"name": c.plural + "." + c.group},
			"spec": map[string]any{
				"group": c.group,
				"scope": "Namespaced",
				"names": map[string]any{"kind": c.kind, "plural": c.plural, "singular": c.plural[:len(c.plural)-1], "listKind": c.kind + "List"},
				"versions": []any{map[string]any{
					"name": "v1", "served": true, "storage": true,
					"subresources": map[string]any{"status": map[string]any{}},
					"schema": map[string]any{"openAPIV3Schema": map[string]any{
						"type": "object", "x-kubernetes-preserve-unknown-fields": true,
					}},
				}},
			},
		}}
		if err := env.Client.Create(context.Background(), crd); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating CRD %s: %v", crd.GetName(), err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), crd) })
		gvk := schema.GroupVersionKind{Group: c.group, Version: "v1", Kind: c.kind + "List"}
		waitFor(t, "CRD "+crd.GetName()+" served", func() bool {
			l := &unstructured.UnstructuredList{}
			l.SetGroupVersionKind(gvk)
			return env.Client.List(context.Background(), l) == nil
		})
	}
}

func fluxObject(apiVersion, kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

// setApplied writes the status kustomize-controller writes once it applied rev: Ready True,
// ReconciliationSucceeded, at readyAt.
func setApplied(t *testing.T, k *unstructured.Unstructured, rev string, readyAt time.Time) {
	t.Helper()
	ctx := ctxFor(t)
	for {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(k), k); err != nil {
			t.Fatalf("reading Kustomization %s: %v", k.GetName(), err)
		}
		k.Object["status"] = map[string]any{
			"observedGeneration":    k.GetGeneration(),
			"lastAttemptedRevision": rev,
			"lastAppliedRevision":   rev,
			"conditions": []any{map[string]any{
				"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
				"message": "Applied revision: " + rev, "lastTransitionTime": readyAt.UTC().Format(time.RFC3339),
				"observedGeneration": k.GetGeneration(),
			}},
		}
		err := env.Client.Status().Update(ctx, k)
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) || ctx.Err() != nil {
			t.Fatalf("updating the status of Kustomization %s: %v", k.GetName(), err)
		}
	}
}

// leadTimes are the samples of deptracker_flux_apply_lead_time_seconds of Kustomization ns/apps in the
// instance's registry: their number and sum.
func leadTimes(t *testing.T, in *instance, ns string) (uint64, float64) {
	t.Helper()
	mfs, err := in.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "deptracker_flux_apply_lead_time_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == ns && labels["name"] == "apps" && labels["cluster"] == cluster {
				return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
			}
		}
	}
	return 0, 0
}

// waitLeadTimes waits for n samples, the last of which brings the sum to the expected seconds, within a second.
func waitLeadTimes(t *testing.T, in *instance, ns string, n uint64, wantSum float64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d Flux lead time samples", n), func() bool { c, _ := leadTimes(t, in, ns); return c >= n })
	c, sum := leadTimes(t, in, ns)
	if c != n || sum < wantSum-1 || sum > wantSum+1 {
		t.Errorf("Flux lead time: %d samples of sum %.0fs, want %d of %.0fs", c, sum, n, wantSum)
	}
}

// stayLeadTimes checks that the number of samples stays n for the quiet period (and a few discovery periods).
func stayLeadTimes(t *testing.T, in *instance, ns string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(max(quiet, 4*fluxDiscoveryInterval))
	for time.Now().Before(deadline) {
		if c, _ := leadTimes(t, in, ns); c != n {
			t.Fatalf("%d Flux lead time samples, want %d", c, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fluxLedger is the tracker's Flux ledger ConfigMap's data.
func fluxLedger(t *testing.T) map[string]string {
	t.Helper()
	var cm corev1.ConfigMap
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: trackerNamespace, Name: flux.LedgerName}, &cm); err != nil {
		t.Fatalf("reading the Flux ledger: %v", err)
	}
	return cm.Data
}

func randomSHA(t *testing.T) string {
	t.Helper()
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
