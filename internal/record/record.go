// Package record holds the deployment record model and the pure functions that derive records from pods:
// image reference parsing, the deployment-name template and the metadata annotations.
package record

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
)

// Status is the state of a deployment record as GitHub understands it.
type Status string

// The statuses of a deployment record.
// See https://docs.github.com/rest/orgs/artifact-metadata#create-an-artifact-deployment-record.
const (
	StatusDeployed       Status = "deployed"
	StatusDecommissioned Status = "decommissioned"
)

// Length limits of the request body fields, in characters (Unicode code points, as JSON Schema counts them).
// See https://docs.github.com/rest/orgs/artifact-metadata#create-an-artifact-deployment-record.
const (
	MaxNameLength           = 256
	MaxVersionLength        = 100
	MaxEnvironmentLength    = 128 // logical_environment, physical_environment and cluster
	MaxDeploymentNameLength = 256
	MaxRepositoryLength     = 100
)

// Record is one artifact deployment record, in the shape of the GitHub REST API request body of
// POST /orgs/{org}/artifacts/metadata/deployment-record. Field names are the API's.
type Record struct {
	// Name is the artifact name: the image repository as written in the pod spec, without tag or digest.
	Name string `json:"name"`
	// Digest is "sha256:" followed by 64 lowercase hex digits.
	Digest string `json:"digest"`
	// Version is the image tag, when there is one.
	Version string `json:"version,omitempty"`
	// Status is deployed or decommissioned.
	Status Status `json:"status"`
	// LogicalEnvironment is the logical environment (for example "production").
	LogicalEnvironment string `json:"logical_environment"`
	// PhysicalEnvironment is the physical environment (for example a region or data centre).
	PhysicalEnvironment string `json:"physical_environment,omitempty"`
	// Cluster is the name of the cluster the tracker runs in.
	Cluster string `json:"cluster"`
	// DeploymentName identifies the deployment within the cluster; rendered from DN_TEMPLATE.
	DeploymentName string `json:"deployment_name"`
	// Tags are free-form key/value pairs from metadata.github.com/<key> annotations.
	Tags map[string]string `json:"tags,omitempty"`
	// RuntimeRisks come from the metadata.github.com/runtime-risks annotation.
	RuntimeRisks []string `json:"runtime_risks,omitempty"`
	// GitHubRepository links images that have no provenance attestation to a repository. It is a repository
	// NAME only ("app", not "octo-org/app"; pattern ^[A-Za-z0-9.\-_]+$, at most 100 characters) of the
	// organization the record is posted to; MetadataFrom derives it from the repository annotation.
	GitHubRepository string `json:"github_repository,omitempty"`
}

// Key identifies a record at GitHub: the API upserts by logical environment, physical environment, cluster and
// deployment name. Records of one Key are delivered one at a time, in order.
type Key struct {
	LogicalEnvironment  string
	PhysicalEnvironment string
	Cluster             string
	DeploymentName      string
}

// Key returns the upsert key of r.
func (r *Record) Key() Key {
	return Key{
		LogicalEnvironment:  r.LogicalEnvironment,
		PhysicalEnvironment: r.PhysicalEnvironment,
		Cluster:             r.Cluster,
		DeploymentName:      r.DeploymentName,
	}
}

// FieldError is a field of a Record that GitHub would reject. Field is the JSON name of the field.
type FieldError struct {
	Field  string
	Reason string
}

// Error returns "field: reason".
func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Validate reports every field of a finished record that the API would answer with 422 Unprocessable Entity,
// joined, each a *FieldError naming the field: lengths, the digest and status formats, tag and runtime risk
// limits, the repository name. Such a record can never be delivered, so the tracker checks it before handing
// it on instead of letting the sink find out. Values are not quoted in the errors: they can be long.
func (r *Record) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, a...)})
	}
	// minLen is 0 or 1: the API requires some fields to be non-empty.
	length := func(field, s string, minLen, maxLen int) {
		switch n := utf8.RuneCountInString(s); {
		case n < minLen:
			bad(field, "is required")
		case n > maxLen:
			bad(field, "is %d characters, more than %d", n, maxLen)
		}
	}
	length("name", r.Name, 1, MaxNameLength)
	if !ValidDigest(r.Digest) {
		bad("digest", "is not sha256: followed by 64 lowercase hex digits")
	}
	length("version", r.Version, 0, MaxVersionLength)
	if r.Status != StatusDeployed && r.Status != StatusDecommissioned {
		bad("status", "must be %s or %s", StatusDeployed, StatusDecommissioned)
	}
	length("logical_environment", r.LogicalEnvironment, 1, MaxEnvironmentLength)
	length("physical_environment", r.PhysicalEnvironment, 0, MaxEnvironmentLength)
	length("cluster", r.Cluster, 0, MaxEnvironmentLength)
	length("deployment_name", r.DeploymentName, 0, MaxDeploymentNameLength)
	if len(r.Tags) > MaxTags {
		bad("tags", "has %d tags, more than %d", len(r.Tags), MaxTags)
	}
	for k, v := range r.Tags {
		if k == "" || utf8.RuneCountInString(k) > MaxTagLength || utf8.RuneCountInString(v) > MaxTagLength {
			bad("tags", "a key is empty, or a key or value is longer than %d characters", MaxTagLength)
			break
		}
	}
	if len(r.RuntimeRisks) > MaxRuntimeRisks {
		bad("runtime_risks", "has %d items, more than %d", len(r.RuntimeRisks), MaxRuntimeRisks)
	}
	for i, risk := range r.RuntimeRisks {
		if !slices.Contains(RuntimeRisks, risk) {
			bad("runtime_risks", "item %d is not one of %v", i, RuntimeRisks)
		} else if slices.Index(r.RuntimeRisks, risk) < i {
			bad("runtime_risks", "%s appears more than once", risk)
		}
	}
	if r.GitHubRepository != "" {
		length("github_repository", r.GitHubRepository, 1, MaxRepositoryLength)
		if !repositoryPattern.MatchString(r.GitHubRepository) {
			bad("github_repository", "is not a repository name (letters, digits, '.', '-' and '_', without owner)")
		}
	}
	return errors.Join(errs...)
}

// Equal reports whether a and b are the same record, field by field. Absent and empty tags (runtime risks)
// are equal: both leave the field out of the request body.
func Equal(a, b Record) bool {
	return a.Name == b.Name &&
		a.Digest == b.Digest &&
		a.Version == b.Version &&
		a.Status == b.Status &&
		a.LogicalEnvironment == b.LogicalEnvironment &&
		a.PhysicalEnvironment == b.PhysicalEnvironment &&
		a.Cluster == b.Cluster &&
		a.DeploymentName == b.DeploymentName &&
		maps.Equal(a.Tags, b.Tags) &&
		slices.Equal(a.RuntimeRisks, b.RuntimeRisks) &&
		a.GitHubRepository == b.GitHubRepository
}
