// Package version holds the version, commit and build date stamped into the binary at build time.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// The values stamped at build time, each with -ldflags "-X github.com/deployment-tracker/deployment-tracker/internal/version.<Name>=...".
var (
	// Version is the release (a tag, or git describe's output).
	Version = "dev"
	// Commit is the full git commit; when not stamped, the one go build recorded from the checkout, if any.
	Commit = ""
	// Date is when the binary was built (RFC 3339, UTC; the commit's date for reproducible builds); when not
	// stamped, the commit time go build recorded, if any.
	Date = ""
)

// UserAgent is the User-Agent sent to external APIs.
func UserAgent() string { return "deployment-tracker/" + Version }

// String is what -version prints: version, commit, build date, and the Go toolchain and platform.
func String() string {
	commit, date := BuildCommit(), BuildDate()
	return fmt.Sprintf("deployment-tracker %s (commit %s, built %s, %s %s/%s)",
		Version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// BuildCommit is Commit, else the VCS revision go build recorded (with "-dirty" for a modified checkout),
// else "unknown". Builds outside a checkout (the image's: .git is not in the build context) record none, so
// the Makefile and the Dockerfile stamp it.
func BuildCommit() string {
	if Commit != "" {
		return Commit
	}
	rev, modified := vcsSetting("vcs.revision"), vcsSetting("vcs.modified")
	switch {
	case rev == "":
		return "unknown"
	case modified == "true":
		return rev + "-dirty"
	default:
		return rev
	}
}

// BuildDate is Date, else the commit time go build recorded, else "unknown".
func BuildDate() string {
	if Date != "" {
		return Date
	}
	if t := vcsSetting("vcs.time"); t != "" {
		return t
	}
	return "unknown"
}

// vcsSetting is one of the vcs.* settings go build records (https://pkg.go.dev/runtime/debug#BuildSetting).
func vcsSetting(key string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}
