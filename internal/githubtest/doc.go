// Package githubtest is an in-process fake of the parts of the GitHub REST API the deployment tracker uses:
//
//   - POST /orgs/{org}/artifacts/metadata/deployment-record
//     (https://docs.github.com/rest/orgs/artifact-metadata#create-an-artifact-deployment-record)
//   - POST /app/installations/{installation_id}/access_tokens
//     (https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app)
//   - GET /orgs/{org} (https://docs.github.com/rest/orgs/orgs#get-an-organization), read-only, for the
//     preflight check
//   - the cluster endpoints POST /orgs/{org}/artifacts/metadata/deployment-record/cluster/{cluster}, POST
//     .../cluster/{cluster}/jobs and GET .../cluster/{cluster}/jobs/{job_id} (cluster.go)
//   - POST and GET /repos/{owner}/{repo}/deployments, GET /repos/{owner}/{repo}/deployments/{deployment_id}
//     (https://docs.github.com/rest/deployments/deployments)
//   - POST and GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses, GET
//     .../statuses/{status_id} (https://docs.github.com/rest/deployments/statuses)
//   - GET /repos/{owner}/{repo}/commits/{ref} (https://docs.github.com/rest/commits/commits#get-a-commit), as
//     JSON or as the bare SHA
//
// The repository endpoints serve the repositories of Options.Repos (commits, branches and tags, changed later
// with AddRepo, AddCommit, SetBranch and SetTag); tests read what clients created with Deployments and wait
// for it with WaitForDeployments. deployments.go, commits.go and repos.go list what the documentation says
// and what the fake assumes.
//
// It behaves like the real thing where it matters to a client: it checks the organization, the credentials (a
// personal access token, or an installation token it issued itself against an RS256 JWT signed by the App's
// key), the API headers, and validates every request body against the documented schema with its own code
// (written from the OpenAPI description in github/rest-api-description, not shared with the client). Valid
// records are upserted by logical environment, physical environment, cluster and deployment name, and also kept
// in an ordered log.
//
// Failures are programmable at run time and safe for concurrent use: 5xx, 429 with Retry-After, primary and
// secondary rate limits, slow answers and 404s for unknown artifacts; InjectRepoNext programs the repository
// endpoints, one by one or all together. Tests wait for records with WaitFor instead of sleeping.
//
// New does not need a *testing.T, so a demo program can run the server too.
package githubtest
