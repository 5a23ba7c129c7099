package flux

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGitHubHosts(t *testing.T) {
	tests := []struct {
		name, apiURL string
		want         []string
	}{
		{name: "github.com", apiURL: "https://api.github.com", want: []string{"github.com"}},
		{name: "default", apiURL: "", want: []string{"github.com"}},
		{name: "Enterprise Server", apiURL: "https://GHES.example.com/api/v3", want: []string{"github.com", "ghes.example.com"}},
		{name: "port", apiURL: "http://127.0.0.1:8080", want: []string{"github.com", "127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, GitHubHosts(tt.apiURL)); diff != "" {
				t.Errorf("GitHubHosts(%q) (-want +got):\n%s", tt.apiURL, diff)
			}
		})
	}
}

func TestParseRepository(t *testing.T) {
	hosts := []string{"github.com", "ghes.example.com"}
	tests := []struct {
		name, in    string
		short       bool
		owner, repo string
		ok          bool
	}{
		{name: "https", in: "https://github.com/octo-org/shop", owner: "octo-org", repo: "shop", ok: true},
		{name: "https .git", in: "https://github.com/octo-org/shop.git", owner: "octo-org", repo: "shop", ok: true},
		{name: "trailing slash", in: "https://github.com/octo-org/shop/", owner: "octo-org", repo: "shop", ok: true},
		{name: "host case", in: "https://GitHub.com/octo-org/shop", owner: "octo-org", repo: "shop", ok: true},
		{name: "ssh", in: "ssh://git@github.com/octo-org/shop", owner: "octo-org", repo: "shop", ok: true},
		{name: "ssh port .git", in: "ssh://git@github.com:22/octo-org/shop.git", owner: "octo-org", repo: "shop", ok: true},
		{name: "scp-like", in: "git@github.com:octo-org/shop.git", owner: "octo-org", repo: "shop", ok: true},
		{name: "Enterprise Server", in: "https://ghes.example.com/team/app.v2", owner: "team", repo: "app.v2", ok: true},
		{name: "other host", in: "https://gitlab.com/octo-org/shop"},
		{name: "OCI", in: "oci://ghcr.io/octo-org/manifests"},
		{name: "deeper path", in: "https://github.com/octo-org/shop/tree/main"},
		{name: "no repository", in: "https://github.com/octo-org"},
		{name: "bad owner", in: "https://github.com/-octo/shop"},
		{name: "dot dot", in: "https://github.com/octo-org/.."},
		{name: "query", in: "https://github.com/octo-org/shop?x=1"},
		{name: "short refused", in: "octo-org/shop"},
		{name: "short annotation", in: "octo-org/shop", short: true, owner: "octo-org", repo: "shop", ok: true},
		{name: "short annotation, URL", in: "https://github.com/octo-org/shop", short: true, owner: "octo-org", repo: "shop", ok: true},
		{name: "short too deep", in: "a/b/c", short: true},
		{name: "empty", in: "", short: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			owner, repo, ok := ParseRepository(tt.in, hosts, tt.short)
			if owner != tt.owner || repo != tt.repo || ok != tt.ok {
				t.Errorf("ParseRepository(%q, %t) = %q, %q, %t; want %q, %q, %t", tt.in, tt.short, owner, repo, ok, tt.owner, tt.repo, tt.ok)
			}
		})
	}
}
