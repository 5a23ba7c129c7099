package e2e

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/deployment-tracker/deployment-tracker/certs"
	"github.com/deployment-tracker/deployment-tracker/internal/preflight"
)

// TestPreflight runs `deployment-tracker check` in this process, with the tracker's flags and variables,
// against the control plane (the shipped CRDs and RBAC, cert-manager's CRDs, the webhook with the CA the test
// environment injected) and the GitHub test server (GitHub App authentication).
func TestPreflight(t *testing.T) {
	dir, err := certs.CRDPaths()
	if err != nil {
		t.Fatal(err)
	}
	// InstallCRDs waits until discovery serves them.
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{dir}, ErrorIfPathMissing: true}); err != nil {
		t.Fatalf("installing cert-manager CRDs: %v", err)
	}
	args := []string{"-ledger-namespace=" + trackerNamespace, "-exclude-namespaces=" + trackerNamespace + ",kube-system"}
	vars := map[string]string{
		"ORG":                 org,
		"BASE_URL":            gh.URL(),
		"LOGICAL_ENVIRONMENT": logicalEnvironment,
		"CLUSTER":             cluster,
		"GH_APP_ID":           strconv.Itoa(appID),
		"GH_INSTALL_ID":       strconv.Itoa(installationID),
		"GH_APP_PRIV_KEY":     keyPath,
	}
	check := func(t *testing.T, rc *rest.Config, extraArgs []string, extraVars map[string]string) (int, map[string]preflight.Result) {
		t.Helper()
		vs := map[string]string{}
		for k, v := range vars {
			vs[k] = v
		}
		for k, v := range extraVars {
			vs[k] = v
		}
		var stdout, stderr bytes.Buffer
		code := preflight.Main(ctxFor(t), append(append([]string{}, args...), extraArgs...), func(k string) (string, bool) {
			v, ok := vs[k]
			return v, ok && v != ""
		}, preflight.Options{Stdout: &stdout, Stderr: &stderr, RestConfig: rc})
		t.Logf("deployment-tracker check (exit status %d):\n%s%s", code, stdout.String(), stderr.String())
		return code, parseResults(t, stdout.String())
	}

	t.Run("installed, as the ServiceAccount", func(t *testing.T) {
		// An administrator's kubeconfig outside the cluster: the RBAC is the ServiceAccount's, by
		// SubjectAccessReview.
		code, got := check(t, env.Config, nil, nil)
		if code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
		for _, name := range []string{"cert-manager", "ledger CRDs", "webhook", "rbac", "github"} {
			r, ok := got[name]
			if !ok {
				t.Errorf("no %s line", name)
				continue
			}
			if r.Status != preflight.Pass {
				t.Errorf("%s: %s, want PASS", name, r)
			}
		}
		wantContains(t, got["webhook"].Message, "caBundle injected")
		wantContains(t, got["rbac"].Message, "system:serviceaccount:deployment-tracker:deployment-tracker has all")
		wantContains(t, got["github"].Message, "organization "+org+" found")
	})

	t.Run("as the tracker's own identity", func(t *testing.T) {
		// What the check sees run in the tracker's pod: its ServiceAccount's own permissions, by
		// SelfSubjectAccessReview. It may not read webhook configurations, which is a warning, not a failure.
		code, got := check(t, env.ServiceAccountConfig(trackerNamespace, serviceAccount), []string{"-check-as-serviceaccount=false"}, nil)
		if code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
		statuses := map[string]preflight.Status{}
		for name, r := range got {
			statuses[name] = r.Status
		}
		want := map[string]preflight.Status{
			"cert-manager": preflight.Pass, "ledger CRDs": preflight.Pass, "webhook": preflight.Warn, "rbac": preflight.Pass, "github": preflight.Pass,
		}
		if diff := cmp.Diff(want, statuses); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
		wantContains(t, got["rbac"].Message, "system:serviceaccount:deployment-tracker:deployment-tracker (the identity in use) has all")
	})

	t.Run("wrong ORG", func(t *testing.T) {
		code, got := check(t, env.Config, nil, map[string]string{"ORG": "octo-typo"})
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		r := got["github"]
		if r.Status != preflight.Fail {
			t.Errorf("github: %s, want FAIL", r)
		}
		wantContains(t, r.Message, `ORG: organization "octo-typo" not found`)
		for _, name := range []string{"cert-manager", "ledger CRDs", "webhook", "rbac"} {
			if got[name].Status != preflight.Pass {
				t.Errorf("%s: %s, want PASS", name, got[name])
			}
		}
	})
}

// parseResults reads the result lines of the check's output by their check name.
func parseResults(t *testing.T, out string) map[string]preflight.Result {
	t.Helper()
	got := map[string]preflight.Result{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		status := preflight.Status(strings.TrimSpace(line[:min(4, len(line))]))
		if status != preflight.Pass && status != preflight.Warn && status != preflight.Fail {
			continue // the summary
		}
		// "PASS  cert-manager  message": the check name is padded to 13 characters.
		rest := line[6:]
		name, msg := strings.TrimSpace(rest[:min(13, len(rest))]), strings.TrimSpace(rest[min(14, len(rest)):])
		got[name] = preflight.Result{Status: status, Check: name, Message: msg}
	}
	return got
}

func wantContains(t *testing.T, s, want string) {
	t.Helper()
	if !strings.Contains(s, want) {
		t.Errorf("%q lacks %q", s, want)
	}
}
