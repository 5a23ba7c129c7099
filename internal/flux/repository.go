package flux

import (
	"net/url"
	"regexp"
	"strings"
)

// GitHubHosts are the hosts whose repository URLs name a repository the tracker's GitHub API knows:
// github.com always, and the host of the API URL itself unless that is api.github.com (GitHub Enterprise Server:
// https://HOST/api/v3 serves the repositories of https://HOST/ORG/REPO). Repositories on github.com are looked
// up at apiURL too.
func GitHubHosts(apiURL string) []string {
	hosts := []string{"github.com"}
	if u, err := url.Parse(apiURL); err == nil && u.Hostname() != "" {
		if h := strings.ToLower(u.Hostname()); h != "api.github.com" && h != "github.com" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// The names GitHub allows: an owner is a login (letters, digits and single hyphens, at most 39 characters), a
// repository at most 100 letters, digits, '.', '-' and '_' (and not "." or "..").
var (
	ownerPattern = regexp.MustCompile(`^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$`)
	repoPattern  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
)

// ParseRepository returns the owner and name of a GitHub repository from a Flux GitRepository's spec.url or the
// repository annotation: "https://HOST/OWNER/REPO" (http too, with or without ".git" and a trailing slash),
// "ssh://git@HOST[:PORT]/OWNER/REPO", the scp-like "git@HOST:OWNER/REPO", and, with allowShort (the
// annotation), the short "OWNER/REPO". HOST must be one of hosts (case-insensitive, see GitHubHosts): a
// repository elsewhere (GitLab, Bitbucket, an OCI registry) is not looked up on GitHub, where a repository of
// the same name would give a wrong commit time.
func ParseRepository(s string, hosts []string, allowShort bool) (owner, repo string, ok bool) {
	s = strings.TrimSpace(s)
	var host, path string
	switch {
	case strings.Contains(s, "://"):
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "ssh") || u.RawQuery != "" || u.Fragment != "" {
			return "", "", false
		}
		host, path = u.Hostname(), u.Path
	case strings.Contains(s, "@") && strings.Contains(s, ":"):
		// scp-like: [user@]host:path
		at := strings.Index(s, "@")
		h, p, _ := strings.Cut(s[at+1:], ":")
		host, path = h, p
	case allowShort:
		path = s
	default:
		return "", "", false
	}
	if host != "" {
		known := false
		for _, h := range hosts {
			known = known || strings.EqualFold(h, host)
		}
		if !known {
			return "", "", false
		}
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	owner, repo, found := strings.Cut(path, "/")
	if !found || strings.Contains(repo, "/") || len(owner) > 39 || !ownerPattern.MatchString(owner) ||
		!repoPattern.MatchString(repo) || repo == "." || repo == ".." {
		return "", "", false
	}
	return owner, repo, true
}
