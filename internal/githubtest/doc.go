// Package githubtest is an in-process fake of the parts of the GitHub REST API the deployment tracker uses:
//
//   - POST /orgs/{org}/artifacts/metadata/deployment-record
//     (https://docs.github.com/rest/orgs/artifact-metadata#create-an-artifact-deployment-record)
//   - POST /app/installations/{installation_id}/access_tokens
//     (https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app)
//   - GET /orgs/{org} (https://docs.github.com/rest/orgs/orgs#get-an-organization), read-only, for the
//     preflight check
//
// It behaves like the real thing where it matters to a client: it checks the organization, the credentials (a
// personal access token, or an installation token it issued itself against an RS256 JWT signed by the App's
// key), the API headers, and validates every request body against the documented schema with its own code
// (written from the OpenAPI description in github/rest-api-description, not shared with the client). Valid
// records are upserted by logical environment, physical environment, cluster and deployment name, and also kept
// in an ordered log.
//
// Failures are programmable at run time and safe for concurrent use: 5xx, 429 with Retry-After, primary and
// secondary rate limits, slow answers and 404s for unknown artifacts. Tests wait for records with WaitFor
// instead of sleeping.
//
// New does not need a *testing.T, so a demo program can run the server too.
package githubtest
