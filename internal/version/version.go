// Package version holds the version stamped into the binary at build time.
package version

// Version is set with -ldflags "-X github.com/deployment-tracker/deployment-tracker/internal/version.Version=...".
var Version = "dev"

// UserAgent is the User-Agent sent to external APIs.
func UserAgent() string { return "deployment-tracker/" + Version }
