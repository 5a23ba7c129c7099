package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	_, restart := withTracker(t, trackerSettings{configuredRolloutSinks: true})
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
		waitDeployments(t, ghEnv, "v1: in_progress success", "v2: in_progress")
		restart(nil) // in the middle of the rollout: its in_progress is not sent again
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
		restart(nil)
		stayDeployments(t, ghEnv, before)

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
		labels := map[string]string{"app": "db"}
		sts := &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db", Annotations: map[string]string{"source-ref": "release-main"}},
			Spec: appsv1.StatefulSetSpec{
				Replicas: ptr.To[int32](1), ServiceName: "db",
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: podTemplate(labels, container("db", "ghcr.io/octo-org/ghd-db:latest")),
			},
		}
		g := gitHubDeployment(ns, "db", "StatefulSet", map[string]any{"jsonPath": "{.metadata.annotations.source-ref}", "regexp": "release-(?P<ref>.+)"}, ghEnv)
		if err := env.Client.Create(context.Background(), g); err != nil {
			t.Fatalf("creating the GitHubDeployment: %v", err)
		}
		mustCreate(t, sts)
		waitRollout(t, workloadOf("StatefulSet", ns, "db"), 1, rollout.PhaseCurrent)
		// The rollout may be announced complete at once (level-based delivery).
		waitFor(t, "a successful deployment of main", func() bool {
			got := deploymentsOf(ghEnv)
			return len(got) == 1 && strings.HasPrefix(got[0], "main: ") && strings.HasSuffix(got[0], "success")
		})
		waitFor(t, "the GitHubDeployment's status to show it", func() bool {
			st := statusOf(t, g)
			return st.ref == "main" && st.state == "success" && st.id > 0 && st.conditions["Ready"] == "True/Synced" && st.conditions["RefResolved"] == "True/Synced"
		})
	})

	t.Run("invalid regexp", func(t *testing.T) {
		ghEnv := "e2e-bad-" + ns
		before := gh.RepoStats().Requests[githubtest.EndpointCreateDeployment]
		g := gitHubDeployment(ns, "bad", "Deployment", map[string]any{"regexp": "v(\\d+"}, ghEnv)
		if err := env.Client.Create(context.Background(), g); err != nil {
			t.Fatalf("creating the GitHubDeployment: %v", err)
		}
		mustCreate(t, deployment(ns, "bad", 1, container("app", "ghcr.io/octo-org/ghd-bad:v1")))
		waitFor(t, "RefResolved False with ExtractFailed", func() bool {
			st := statusOf(t, g)
			return st.conditions["RefResolved"] == "False/ExtractFailed" && st.conditions["Ready"] == "False/ExtractFailed"
		})
		waitFor(t, "a Warning Event on the GitHubDeployment", func() bool {
			var evs corev1.EventList
			if err := env.Client.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
				return false
			}
			for _, e := range evs.Items {
				if e.InvolvedObject.Kind == "GitHubDeployment" && e.InvolvedObject.Name == "bad" && e.Type == corev1.EventTypeWarning &&
					e.Reason == githubdeploy.EventFailed && strings.Contains(e.Message, "regexp") {
					return true
				}
			}
			return false
		})
		if got := deploymentsOf(ghEnv); len(got) != 0 {
			t.Errorf("deployments %q for a rule that cannot extract", got)
		}
		if n := gh.RepoStats().Requests[githubtest.EndpointCreateDeployment] - before; n != 0 {
			t.Errorf("%d deployments created, want none", n)
		}
	})
}

// gitHubDeployment is a GitHubDeployment of workload kind/name of ns into the test repository.
func gitHubDeployment(ns, name, kind string, extract map[string]any, environment string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "github.deployment-tracker.io/v1alpha1", "kind": "GitHubDeployment",
		"metadata": map[string]any{"namespace": ns, "name": name},
		"spec": map[string]any{
			"sourceRef":  map[string]any{"apiVersion": "apps/v1", "kind": kind, "name": name},
			"extract":    extract,
			"repository": map[string]any{"name": deployRepo, "environment": environment},
		},
	}}
}

type ghdStatus struct {
	ref, state string
	id         int64
	conditions map[string]string // type → status/reason
}

// statusOf reads g's status.
func statusOf(t *testing.T, g *unstructured.Unstructured) ghdStatus {
	t.Helper()
	cur := g.DeepCopy()
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(g), cur); err != nil {
		return ghdStatus{}
	}
	var st ghdStatus
	st.ref, _, _ = unstructured.NestedString(cur.Object, "status", "ref")
	st.state, _, _ = unstructured.NestedString(cur.Object, "status", "lastState")
	st.id, _, _ = unstructured.NestedInt64(cur.Object, "status", "deploymentID")
	conds, _, _ := unstructured.NestedSlice(cur.Object, "status", "conditions")
	st.conditions = map[string]string{}
	for _, c := range conds {
		m, _ := c.(map[string]any)
		st.conditions[fmt.Sprint(m["type"])] = fmt.Sprintf("%v/%v", m["status"], m["reason"])
	}
	return st
}

// stayDeployments checks that the deployments of environment stay as they are for a few seconds: long enough
// for a resumed tracker that re-sent statuses to have done so.
func stayDeployments(t *testing.T, environment string, want []string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if got := deploymentsOf(environment); !slices.Equal(got, want) {
			t.Fatalf("the deployments became %q, want them unchanged %q", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
