package version_test

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// The release workflow's files, from this package's directory.
var (
	releaseWorkflow = filepath.Join("..", "..", ".github", "workflows", "release.yaml")
	dockerfile      = filepath.Join("..", "..", "Dockerfile")
)

// workflow is the part of a GitHub Actions workflow the release test reads
// (https://docs.github.com/actions/reference/workflows-and-actions/workflow-syntax).
type workflow struct {
	// On is the trigger. YAML 1.1, which sigs.k8s.io/yaml follows, reads the key on as the boolean true.
	On          map[string]trigger `json:"true"`
	Permissions map[string]string  `json:"permissions"`
	Jobs        map[string]job     `json:"jobs"`
}

type trigger struct {
	Tags     []string `json:"tags"`
	Branches []string `json:"branches"`
}

type job struct {
	Permissions map[string]string `json:"permissions"`
	Steps       []step            `json:"steps"`
}

type step struct {
	ID   string            `json:"id"`
	Uses string            `json:"uses"`
	With map[string]string `json:"with"`
}

// TestReleaseWorkflow checks .github/workflows/release.yaml beyond what actionlint (make lint) can know: it runs
// on version tags only, with the least permissions; it builds both platforms with an SBOM and full provenance,
// passing exactly the build arguments the Dockerfile stamps into the binary; it attests the pushed digest; and
// every action is pinned to a commit.
func TestReleaseWorkflow(t *testing.T) {
	raw, err := os.ReadFile(releaseWorkflow)
	if err != nil {
		t.Fatal(err)
	}
	var wf workflow
	if err := yaml.Unmarshal(raw, &wf); err != nil {
		t.Fatal(err)
	}

	if diff := cmp.Diff(map[string]trigger{"push": {Tags: []string{"v*"}}}, wf.On); diff != "" {
		t.Errorf("trigger (-want +got):\n%s", diff)
	}
	if len(wf.Permissions) != 0 {
		t.Errorf("workflow permissions %v, want none (each job asks for its own)", wf.Permissions)
	}
	if len(wf.Jobs) != 1 {
		t.Fatalf("jobs %v, want one", slices.Sorted(maps.Keys(wf.Jobs)))
	}
	j := slices.Collect(maps.Values(wf.Jobs))[0]
	wantPerms := map[string]string{"contents": "read", "packages": "write", "id-token": "write", "attestations": "write"}
	if diff := cmp.Diff(wantPerms, j.Permissions); diff != "" {
		t.Errorf("job permissions (-want +got):\n%s", diff)
	}

	build := stepUsing(t, j, "docker/build-push-action")
	wantBuild := map[string]string{
		"platforms": "linux/amd64,linux/arm64", "push": "true", "sbom": "true", "provenance": "mode=max", "context": ".",
	}
	for k, want := range wantBuild {
		if got := build.With[k]; got != want {
			t.Errorf("build-push-action %s = %q, want %q", k, got, want)
		}
	}
	if build.ID == "" {
		t.Error("the build step has no id: the attestation cannot name its digest")
	}
	if got := build.With["tags"]; !strings.Contains(got, "steps.meta.outputs.tags") {
		t.Errorf("build-push-action tags = %q, want the metadata step's", got)
	}
	if diff := cmp.Diff(stampedArgs(t), buildArgNames(build.With["build-args"])); diff != "" {
		t.Errorf("build-args against the ARGs the Dockerfile stamps with -X (-Dockerfile +workflow):\n%s", diff)
	}

	attest := stepUsing(t, j, "actions/attest-build-provenance")
	if got, want := attest.With["subject-digest"], "${{ steps."+build.ID+".outputs.digest }}"; got != want {
		t.Errorf("attestation subject-digest = %q, want %q", got, want)
	}
	if attest.With["push-to-registry"] != "true" {
		t.Errorf("attestation push-to-registry = %q, want true", attest.With["push-to-registry"])
	}
	meta := stepUsing(t, j, "docker/metadata-action")
	if meta.With["images"] == "" || meta.With["images"] != attest.With["subject-name"] {
		t.Errorf("image %q tagged, %q attested: want the same", meta.With["images"], attest.With["subject-name"])
	}
	if !strings.Contains(string(raw), "IMAGE: ghcr.io/${{ github.repository }}") {
		t.Error("the image is not ghcr.io/${{ github.repository }}")
	}

	// A tag can be moved to other code; a commit cannot. The comment names the release for humans and bots.
	pinned := regexp.MustCompile(`^\s*(?:-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$`)
	for i, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(line, "uses:") && !strings.HasPrefix(strings.TrimSpace(line), "#") && !pinned.MatchString(line) {
			t.Errorf("release.yaml:%d: %q: want an action pinned to a commit SHA with its release in a comment", i+1, strings.TrimSpace(line))
		}
	}
}

// stampedArgs returns the names of the Dockerfile's build arguments that its go build stamps into the binary
// (-X ...=${NAME}), each declared with ARG.
func stampedArgs(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^ARG (\w+)`).FindAllStringSubmatch(string(raw), -1) {
		declared[m[1]] = true
	}
	var names []string
	for _, m := range regexp.MustCompile(`-X \S+=\$\{(\w+)\}`).FindAllStringSubmatch(string(raw), -1) {
		if !declared[m[1]] {
			t.Errorf("Dockerfile: %s is stamped but not declared with ARG", m[1])
		}
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatal("Dockerfile: no -X ...=${ARG} in the go build")
	}
	slices.Sort(names)
	return names
}

// buildArgNames returns the names of build-push-action's build-args (NAME=value lines), sorted.
func buildArgNames(args string) []string {
	var names []string
	for _, line := range strings.Split(args, "\n") {
		if name, _, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// stepUsing returns the one step of j that uses action (at any version).
func stepUsing(t *testing.T, j job, action string) step {
	t.Helper()
	var found []step
	for _, s := range j.Steps {
		if strings.HasPrefix(s.Uses, action+"@") {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d steps use %s, want 1", len(found), action)
	}
	return found[0]
}
