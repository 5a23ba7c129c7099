package record_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deployment-tracker/deployment-tracker/internal/githubtest"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// TestValidateAgreesWithGitHub posts records to the fake GitHub API, which validates bodies against the
// documented schema with its own code, and checks that Validate refuses exactly the records the API answers 422
// and names the same fields.
func TestValidateAgreesWithGitHub(t *testing.T) {
	const token = "ghp_validateAgreesToken"
	gh, err := githubtest.New(githubtest.Options{Tokens: []string{token}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)

	chars := func(n int) string { return strings.Repeat("é", n) }
	valid := func() record.Record {
		return record.Record{
			Name:                "ghcr.io/octo-org/app",
			Digest:              "sha256:1bb1e949e55dcefc6353e7b36c8897d2a107d8e8dca49d4e3c0ea8493fc0bc72",
			Version:             "v1",
			Status:              record.StatusDeployed,
			LogicalEnvironment:  "production",
			PhysicalEnvironment: "eu-west-1",
			Cluster:             "moda-1",
			DeploymentName:      "payments/api/server",
			Tags:                map[string]string{"team": "payments"},
			RuntimeRisks:        []string{"internet-exposed"},
			GitHubRepository:    "app",
		}
	}
	tests := []struct {
		name       string
		mutate     func(*record.Record)
		wantFields []string
	}{
		{name: "valid", mutate: func(*record.Record) {}},
		{name: "all at the maximum length", mutate: func(r *record.Record) {
			r.Name, r.Version = chars(record.MaxNameLength), chars(record.MaxVersionLength)
			r.LogicalEnvironment, r.PhysicalEnvironment = chars(record.MaxEnvironmentLength), chars(record.MaxEnvironmentLength)
			r.Cluster, r.DeploymentName = chars(record.MaxEnvironmentLength), chars(record.MaxDeploymentNameLength)
			r.GitHubRepository = strings.Repeat("r", record.MaxRepositoryLength)
		}},
		{name: "optional fields empty", mutate: func(r *record.Record) {
			r.Version, r.PhysicalEnvironment, r.Cluster, r.DeploymentName, r.GitHubRepository = "", "", "", "", ""
			r.Tags, r.RuntimeRisks = nil, nil
		}},
		{name: "name too long", mutate: func(r *record.Record) { r.Name = chars(record.MaxNameLength + 1) }, wantFields: []string{"name"}},
		{name: "name empty", mutate: func(r *record.Record) { r.Name = "" }, wantFields: []string{"name"}},
		{name: "version too long", mutate: func(r *record.Record) { r.Version = chars(record.MaxVersionLength + 1) }, wantFields: []string{"version"}},
		{name: "logical environment too long", mutate: func(r *record.Record) { r.LogicalEnvironment = chars(record.MaxEnvironmentLength + 1) }, wantFields: []string{"logical_environment"}},
		{name: "logical environment empty", mutate: func(r *record.Record) { r.LogicalEnvironment = "" }, wantFields: []string{"logical_environment"}},
		{name: "physical environment too long", mutate: func(r *record.Record) { r.PhysicalEnvironment = chars(record.MaxEnvironmentLength + 1) }, wantFields: []string{"physical_environment"}},
		{name: "cluster too long", mutate: func(r *record.Record) { r.Cluster = chars(record.MaxEnvironmentLength + 1) }, wantFields: []string{"cluster"}},
		{name: "deployment name too long", mutate: func(r *record.Record) { r.DeploymentName = chars(record.MaxDeploymentNameLength + 1) }, wantFields: []string{"deployment_name"}},
		{name: "digest", mutate: func(r *record.Record) { r.Digest = "sha256:abc" }, wantFields: []string{"digest"}},
		{name: "status", mutate: func(r *record.Record) { r.Status = "running" }, wantFields: []string{"status"}},
		{name: "too many tags", mutate: func(r *record.Record) {
			r.Tags = map[string]string{"a": "", "b": "", "c": "", "d": "", "e": "", "f": ""}
		}, wantFields: []string{"tags"}},
		{name: "unknown runtime risk", mutate: func(r *record.Record) { r.RuntimeRisks = []string{"cloud"} }, wantFields: []string{"runtime_risks"}},
		{name: "duplicate runtime risk", mutate: func(r *record.Record) { r.RuntimeRisks = []string{"internet-exposed", "internet-exposed"} }, wantFields: []string{"runtime_risks"}},
		{name: "repository with owner", mutate: func(r *record.Record) { r.GitHubRepository = "octo-org/app" }, wantFields: []string{"github_repository"}},
		{name: "repository too long", mutate: func(r *record.Record) { r.GitHubRepository = strings.Repeat("r", record.MaxRepositoryLength+1) }, wantFields: []string{"github_repository"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid()
			tt.mutate(&r)

			var validateFields []string
			if err := r.Validate(); err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					validateFields = append(validateFields, e.(*record.FieldError).Field)
				}
			}
			if diff := cmp.Diff(tt.wantFields, validateFields); diff != "" {
				t.Errorf("Validate fields (-want +got):\n%s", diff)
			}

			status, apiFields := post(t, gh, token, &r)
			if wantStatus := map[bool]int{true: http.StatusOK, false: http.StatusUnprocessableEntity}[len(tt.wantFields) == 0]; status != wantStatus {
				t.Fatalf("API answered %d, want %d", status, wantStatus)
			}
			if diff := cmp.Diff(tt.wantFields, apiFields); diff != "" {
				t.Errorf("API fields (-want +got):\n%s", diff)
			}
		})
	}
}

// post sends r to the fake and returns the status and the fields a 422 names, once each, in order.
func post(t *testing.T, gh *githubtest.Server, token string, r *record.Record) (int, []string) {
	t.Helper()
	body, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, gh.URL()+"/orgs/"+gh.Org()+"/artifacts/metadata/deployment-record", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", githubtest.MediaType)
	req.Header.Set("X-GitHub-Api-Version", githubtest.APIVersion)
	req.Header.Set("User-Agent", "record-test")
	req.Header.Set("Content-Type", "application/json")
	resp, err := gh.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		Message string `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	var fields []string
	for _, line := range strings.Split(answer.Message, "\n") {
		rest, ok := strings.CutPrefix(line, "For 'properties/")
		if !ok {
			continue
		}
		field, _, _ := strings.Cut(rest, "'")
		if len(fields) == 0 || fields[len(fields)-1] != field {
			fields = append(fields, field)
		}
	}
	return resp.StatusCode, fields
}
