// Package record holds the deployment record model and the pure functions that derive records from pods:
// image reference parsing, the deployment-name template and the metadata annotations.
package record

// Status is the state of a deployment record as GitHub understands it.
type Status string

// The statuses of a deployment record.
// See https://docs.github.com/rest/orgs/artifact-metadata#create-an-artifact-deployment-record.
const (
	StatusDeployed       Status = "deployed"
	StatusDecommissioned Status = "decommissioned"
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
	// GitHubRepository ("owner/repo") links images that have no provenance attestation to a repository.
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
