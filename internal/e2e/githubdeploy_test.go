package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/githubtest"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
	"github.com/deployment-tracker/deployment-tracker/internal/sink/githubdeploy"
)

// The commits of the repository the GitHub Deployments tests deploy.
const (
	deployRepo = "shop"
	shaV1      = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	shaV2      = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
	shaMain    = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"
)

// configuredTracker replaces the suite's tracker, for the duration of t, with one running the rollout sinks
// the configuration enables (with env), and returns a function that restarts it.
func configuredTracker(t *testing.T, vars map[string]string) (restart func()) {
	t.Helper()
	settings := trackerSettings{configuredRolloutSinks: true, env: vars}
	if err := tracker.stop(); err != nil {
		t.Fatalf("stopping the suite's tracker: %v", err)
	}
	in, err := startTracker(ctxFor(t), settings)
	if err != nil {
		t.Fatalf("starting the tracker with its configured rollout sinks: %v", err)
	}
	t.Cleanup(func() {
		if err := in.stop(); err != nil {
			t.Errorf("stopping the configured tracker: %v", err)
		}
		if tracker, err = startTracker(context.Background(), trackerSettings{}); err != nil {
			t.Fatalf("starting the suite's tracker again: %v", err)
		}
	})
	return func() {
		t.Helper()
		if err := in.stop(); err != nil {
			t.Fatalf("stopping the configured tracker: %v", err)
		}
		if in, err = startTracker(ctxFor(t), settings); err != nil {
			t.Fatalf("starting the configured tracker again: %v", err)
		}
	}
}

// deploymentsOf are the GitHub deployments of environment env, oldest first, as "ref: state state …".
func deploymentsOf(environment string) []string {
	var out []string
	for _, d := range gh.Deployments(deployRepo) {
		if d.OriginalEnvironment != environment {
			continue
		}
		var states []string
		for _, s := range d.Statuses {
			states = append(states, s.State)
		}
		out = append(out, d.Ref+": "+strings.Join(states, " "))
	}
	return out
}

func waitDeployments(t *testing.T, environment string, want ...string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("GitHub deployments of %s to be %q (they are %q)", environment, want, deploymentsOf(environment)), func() bool {
		return slices.Equal(deploymentsOf(environment), want)
	})
}

// TestGitHubDeployments: the GitHub Deployments sink as the binary wires it, against the GitHub fake.
// Annotations configure one Deployment: its rollout is a deployment of its image tag with in_progress then
// success; a failed rollout is a failure, the undo reuses the deployment of the restored ref; a restart sends
// nothing again; deletion makes the deployment inactive. A GitHubDeployment configures another from a JSONPath
// and shows the outcome in its status.
func TestGitHubDeployments(t *testing.T) {
	if err := gh.AddRepo(deployRepo, githubtest.Repo{
		Branches: map[string]string{"main": shaMain},
		Tags:     map[string]string{"v1": shaV1, "v2": shaV2},
		Commits:  map[string]githubtest.Commit{shaV1: {Message: "v1"}, shaV2: {Message: "v2"}, shaMain: {Message: "main"}},
	}); err != nil {
		t.Fatal(err)
	}
	restart := configuredTracker(t, nil)
	ns := newNamespace(t)

	t.Run("annotations", func(t *testing.T) {
		ghEnv := "e2e-" + ns
		d := deployment(ns, "web", 1, container("app", "ghcr.io/octo-org/ghd-web:v1"))
		d.Annotations = map[string]string{
			githubdeploy.AnnotationRepository:     deployRepo,
			githubdeploy.AnnotationEnvironment:    ghEnv,
			githubdeploy.AnnotationRefFrom:        "container:app",
			githubdeploy.AnnotationEnvironmentURL: "https://web.example.com",
		}
		d.Spec.MinReadySeconds = 3 // InProgress long enough to be announced
		d.Spec.ProgressDeadlineSeconds = ptr.To[int32](5)
		mustCreate(t, d)
		w := workloadOf("Deployment", ns, "web")
		waitRollout(t, w, 1, rollout.PhaseCurrent)
		waitDeployments(t, ghEnv, "v1: in_progress success")
		dep := gh.Deployments(deployRepo)
		for _, x := range dep {
			if x.OriginalEnvironment == ghEnv {
				if x.SHA != shaV1 || x.AutoMerge || x.RequiredContexts == nil || len(x.RequiredContexts) != 0 || x.Task != "deploy" {
					t.Errorf("deployment %+v: want sha %s, auto_merge false, required_contexts []", x, shaV1)
				}
				if got := x.Statuses[1].EnvironmentURL; got != "https://web.example.com" {
					t.Errorf("success environment_url %q", got)
				}
			}
		}

		update(t, d, func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/octo-org/ghd-web:v2"
			d.Spec.Template.Labels[labelNeverReady] = "false"
		})
		waitRollout(t, w, 2, rollout.PhaseFailed)
		waitDeployments(t, ghEnv, "v1: in_progress success", "v2: in_progress failure")

		update(t, d, func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/octo-org/ghd-web:v1"
			delete(d.Spec.Template.Labels, labelNeverReady)
		})
		waitRollout(t, w, 3, rollout.PhaseCurrent)
		waitRollout(t, w, 2, rollout.PhaseRolledBack)
		// The restored revision's pods already run: it may be announced InProgress first, or Current at once.
		waitFor(t, "the restored ref's deployment to succeed again", func() bool {
			got := deploymentsOf(ghEnv)
			return len(got) == 2 && strings.HasSuffix(got[0], "success") && strings.Count(got[0], "success") == 2 && got[1] == "v2: in_progress failure"
		})

		before := deploymentsOf(ghEnv)
		restart()
		time.Sleep(3 * time.Second) // a resumed tracker that re-sent would have done so by now
		if got := deploymentsOf(ghEnv); !slices.Equal(got, before) {
			t.Errorf("after a restart the deployments are %q, want them unchanged %q", got, before)
		}

		if err := env.Client.Delete(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the deployment of v1 to be inactive", func() bool {
			got := deploymentsOf(ghEnv)
			return len(got) == 2 && strings.HasSuffix(got[0], " inactive")
		})
	})

	t.Run("GitHubDeployment object", func(t *testing.T) {
		ghEnv := "e2e-cr-" + ns
		d := deployment(ns, "api", 1, container("app", "ghcr.io/octo-org/ghd-api:latest"))
		d.Annotations = map[string]string{"source-ref": "release-main"}
		mustCreate(t, d)
		g := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "github.deployment-tracker.io/v1alpha1", "kind": "GitHubDeployment",
			"metadata": map[string]any{"namespace": ns, "name": "api"},
			"spec": map[string]any{
				"sourceRef":  map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
				"extract":    map[string]any{"jsonPath": "{.metadata.annotations.source-ref}", "regexp": "release-(?P<ref>.+)"},
				"repository": map[string]any{"name": deployRepo, "environment": ghEnv},
			},
		}}
		if err := env.Client.Create(context.Background(), g); err != nil {
			t.Fatalf("creating the GitHubDeployment: %v", err)
		}
		// The object exists before the first pod is Ready; the rollout may be announced complete at once.
		waitFor(t, "a successful deployment of main", func() bool {
			got := deploymentsOf(ghEnv)
			return len(got) == 1 && strings.HasPrefix(got[0], "main: ") && strings.HasSuffix(got[0], "success")
		})
		waitFor(t, "the GitHubDeployment's status to show it", func() bool {
			if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(g), g); err != nil {
				return false
			}
			ref, _, _ := unstructured.NestedString(g.Object, "status", "ref")
			state, _, _ := unstructured.NestedString(g.Object, "status", "lastState")
			id, _, _ := unstructured.NestedInt64(g.Object, "status", "deploymentID")
			conds, _, _ := unstructured.NestedSlice(g.Object, "status", "conditions")
			ready := false
			for _, c := range conds {
				m, _ := c.(map[string]any)
				ready = ready || (m["type"] == "Ready" && m["status"] == "True")
			}
			return ref == "main" && state == "success" && id > 0 && ready
		})
	})
}
