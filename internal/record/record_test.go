package record

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func validRecord() Record {
	return Record{
		Name:                "ghcr.io/octo-org/app",
		Digest:              "sha256:" + hexA,
		Version:             "v1.2.3",
		Status:              StatusDeployed,
		LogicalEnvironment:  "production",
		PhysicalEnvironment: "eu-west-1",
		Cluster:             "moda-1",
		DeploymentName:      "payments/api/server",
		Tags:                map[string]string{"team": "payments"},
		RuntimeRisks:        []string{"internet-exposed", "sensitive-data"},
		GitHubRepository:    "app",
	}
}

func TestRecordValidate(t *testing.T) {
	chars := func(n int) string { return strings.Repeat("é", n) } // JSON Schema counts characters, not bytes
	tests := []struct {
		name       string
		mutate     func(r *Record)
		wantFields []string // the FieldError.Field of each joined error, in order
	}{
		{name: "valid", mutate: func(*Record) {}},
		{
			name: "minimal",
			mutate: func(r *Record) {
				*r = Record{Name: "a", Digest: r.Digest, Status: StatusDecommissioned, LogicalEnvironment: "p"}
			},
		},
		{name: "name of the maximum length", mutate: func(r *Record) { r.Name = chars(MaxNameLength) }},
		{name: "name too long", mutate: func(r *Record) { r.Name = chars(MaxNameLength + 1) }, wantFields: []string{"name"}},
		{name: "name empty", mutate: func(r *Record) { r.Name = "" }, wantFields: []string{"name"}},
		{name: "digest empty", mutate: func(r *Record) { r.Digest = "" }, wantFields: []string{"digest"}},
		{name: "digest uppercase", mutate: func(r *Record) { r.Digest = "sha256:" + strings.ToUpper(hexA) }, wantFields: []string{"digest"}},
		{name: "version of the maximum length", mutate: func(r *Record) { r.Version = chars(MaxVersionLength) }},
		{name: "version too long", mutate: func(r *Record) { r.Version = chars(MaxVersionLength + 1) }, wantFields: []string{"version"}},
		{name: "version empty is omitted", mutate: func(r *Record) { r.Version = "" }},
		{name: "status empty", mutate: func(r *Record) { r.Status = "" }, wantFields: []string{"status"}},
		{name: "status unknown", mutate: func(r *Record) { r.Status = "running" }, wantFields: []string{"status"}},
		{name: "logical environment of the maximum length", mutate: func(r *Record) { r.LogicalEnvironment = chars(MaxEnvironmentLength) }},
		{name: "logical environment too long", mutate: func(r *Record) { r.LogicalEnvironment = chars(MaxEnvironmentLength + 1) }, wantFields: []string{"logical_environment"}},
		{name: "logical environment empty", mutate: func(r *Record) { r.LogicalEnvironment = "" }, wantFields: []string{"logical_environment"}},
		{name: "physical environment of the maximum length", mutate: func(r *Record) { r.PhysicalEnvironment = chars(MaxEnvironmentLength) }},
		{name: "physical environment too long", mutate: func(r *Record) { r.PhysicalEnvironment = chars(MaxEnvironmentLength + 1) }, wantFields: []string{"physical_environment"}},
		{name: "cluster of the maximum length", mutate: func(r *Record) { r.Cluster = chars(MaxEnvironmentLength) }},
		{name: "cluster too long", mutate: func(r *Record) { r.Cluster = chars(MaxEnvironmentLength + 1) }, wantFields: []string{"cluster"}},
		{name: "cluster empty", mutate: func(r *Record) { r.Cluster = "" }},
		{name: "deployment name of the maximum length", mutate: func(r *Record) { r.DeploymentName = chars(MaxDeploymentNameLength) }},
		{name: "deployment name too long", mutate: func(r *Record) { r.DeploymentName = chars(MaxDeploymentNameLength + 1) }, wantFields: []string{"deployment_name"}},
		{
			name:   "MaxTags tags",
			mutate: func(r *Record) { r.Tags = map[string]string{"a": "", "b": "", "c": "", "d": "", "e": ""} },
		},
		{
			name:       "too many tags",
			mutate:     func(r *Record) { r.Tags = map[string]string{"a": "", "b": "", "c": "", "d": "", "e": "", "f": ""} },
			wantFields: []string{"tags"},
		},
		{name: "tag value too long", mutate: func(r *Record) { r.Tags = map[string]string{"a": chars(MaxTagLength + 1)} }, wantFields: []string{"tags"}},
		{name: "tag key empty", mutate: func(r *Record) { r.Tags = map[string]string{"": "v"} }, wantFields: []string{"tags"}},
		{
			name:   "all runtime risks",
			mutate: func(r *Record) { r.RuntimeRisks = append([]string(nil), RuntimeRisks...) },
		},
		{
			name:       "too many runtime risks",
			mutate:     func(r *Record) { r.RuntimeRisks = append(append([]string(nil), RuntimeRisks...), "internet-exposed") },
			wantFields: []string{"runtime_risks", "runtime_risks"}, // and a duplicate
		},
		{name: "unknown runtime risk", mutate: func(r *Record) { r.RuntimeRisks = []string{"Internet-Exposed"} }, wantFields: []string{"runtime_risks"}},
		{name: "duplicate runtime risk", mutate: func(r *Record) { r.RuntimeRisks = []string{"sensitive-data", "sensitive-data"} }, wantFields: []string{"runtime_risks"}},
		{name: "no repository is omitted", mutate: func(r *Record) { r.GitHubRepository = "" }},
		{name: "repository of the maximum length", mutate: func(r *Record) { r.GitHubRepository = strings.Repeat("r", MaxRepositoryLength) }},
		{name: "repository too long", mutate: func(r *Record) { r.GitHubRepository = strings.Repeat("r", MaxRepositoryLength+1) }, wantFields: []string{"github_repository"}},
		{name: "repository with owner", mutate: func(r *Record) { r.GitHubRepository = "octo-org/app" }, wantFields: []string{"github_repository"}},
		{
			name: "every problem at once, in field order",
			mutate: func(r *Record) {
				r.Version = chars(MaxVersionLength + 1)
				r.LogicalEnvironment = chars(MaxEnvironmentLength + 1)
				r.PhysicalEnvironment = chars(MaxEnvironmentLength + 1)
				r.Cluster = chars(MaxEnvironmentLength + 1)
				r.DeploymentName = chars(MaxDeploymentNameLength + 1)
				r.Name = chars(MaxNameLength + 1)
			},
			wantFields: []string{"name", "version", "logical_environment", "physical_environment", "cluster", "deployment_name"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRecord()
			tt.mutate(&r)
			err := r.Validate()
			if diff := cmp.Diff(tt.wantFields, errorFields(t, err)); diff != "" {
				t.Errorf("Validate() = %v; fields (-want +got):\n%s", err, diff)
			}
			if err != nil && len(err.Error()) > 2000 {
				t.Errorf("Validate() error is %d bytes; it must not quote long values", len(err.Error()))
			}
		})
	}
}

// errorFields returns the Field of each *FieldError joined in err.
func errorFields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Validate() = %v (%T), want joined errors", err, err)
	}
	var fields []string
	for _, e := range joined.Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("Validate() joined %v (%T), want a *FieldError", e, e)
		}
		if !strings.HasPrefix(fe.Error(), fe.Field+": ") {
			t.Errorf("FieldError %q does not start with its field %q", fe.Error(), fe.Field)
		}
		fields = append(fields, fe.Field)
	}
	return fields
}
