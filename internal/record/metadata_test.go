package record

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// tags builds metadata.github.com/<key> annotations from key, value pairs.
func tags(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[AnnotationPrefix+kv[i]] = kv[i+1]
	}
	return m
}

func TestMetadataFrom(t *testing.T) {
	const org = "octo-org"
	long := func(n int) string { return strings.Repeat("é", n) } // two bytes, one character
	tests := []struct {
		name  string
		org   string
		chain []map[string]string
		want  Metadata // without Skipped
		// wantSkipped are substrings of Metadata.Skipped, one per entry, in order.
		wantSkipped []string
	}{
		{name: "no objects", org: org},
		{name: "no annotations", org: org, chain: []map[string]string{nil, {}}},
		{
			name:  "other annotations are ignored",
			org:   org,
			chain: []map[string]string{{"app.kubernetes.io/name": "api", "metadata.github.co/team": "x", "github.com/team": "y"}},
		},
		{
			name: "nearest object wins for a tag",
			org:  org,
			chain: []map[string]string{
				tags("team", "pod"),
				tags("team", "deployment", "tier", "backend"),
				tags("team", "rollout", "tier", "frontend", "cost-center", "42"),
			},
			want: Metadata{Tags: map[string]string{"team": "pod", "tier": "backend", "cost-center": "42"}},
		},
		{
			name:  "an empty tag value is a value",
			org:   org,
			chain: []map[string]string{tags("team", ""), tags("team", "owner")},
			want:  Metadata{Tags: map[string]string{"team": ""}},
		},
		{
			name:  "a too long tag on the pod falls back to the owner's",
			org:   org,
			chain: []map[string]string{tags("team", long(MaxTagLength+1)), tags("team", "owner")},
			want:  Metadata{Tags: map[string]string{"team": "owner"}},
			wantSkipped: []string{
				AnnotationPrefix + "team: tag key or value longer than 100 characters",
			},
		},
		{
			name:  "tag key and value of exactly MaxTagLength characters",
			org:   org,
			chain: []map[string]string{tags(strings.Repeat("k", MaxTagLength), long(MaxTagLength))},
			want:  Metadata{Tags: map[string]string{strings.Repeat("k", MaxTagLength): long(MaxTagLength)}},
		},
		{
			name:        "tag key longer than MaxTagLength",
			org:         org,
			chain:       []map[string]string{tags(strings.Repeat("k", MaxTagLength+1), "v")},
			wantSkipped: []string{"tag key or value longer than 100 characters"},
		},
		{
			name:        "empty tag key",
			org:         org,
			chain:       []map[string]string{{AnnotationPrefix: "v"}},
			wantSkipped: []string{AnnotationPrefix + ": empty tag key"},
		},
		{
			name:  "MaxTags tags are kept",
			org:   org,
			chain: []map[string]string{tags("a", "1", "b", "2", "c", "3"), tags("d", "4", "e", "5")},
			want:  Metadata{Tags: map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}},
		},
		{
			name:  "tags beyond MaxTags are dropped in key order across the chain",
			org:   org,
			chain: []map[string]string{tags("g", "7", "b", "2", "f", "6", "c", "3"), tags("a", "1", "e", "5", "d", "4")},
			want:  Metadata{Tags: map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}},
			wantSkipped: []string{
				AnnotationPrefix + "f: more than 5 tags",
				AnnotationPrefix + "g: more than 5 tags",
			},
		},
		{
			name:  "runtime risks are normalized, deduplicated and in enum order",
			org:   org,
			chain: []map[string]string{{AnnotationRuntimeRisks: " Sensitive-Data,internet-exposed, ,INTERNET-EXPOSED,critical-resource,"}},
			want:  Metadata{RuntimeRisks: []string{"critical-resource", "internet-exposed", "sensitive-data"}},
		},
		{
			name:  "all runtime risks",
			org:   org,
			chain: []map[string]string{{AnnotationRuntimeRisks: "sensitive-data,lateral-movement,internet-exposed,critical-resource"}},
			want:  Metadata{RuntimeRisks: []string{"critical-resource", "internet-exposed", "lateral-movement", "sensitive-data"}},
		},
		{
			name:        "unknown runtime risks are skipped",
			org:         org,
			chain:       []map[string]string{{AnnotationRuntimeRisks: "internet-exposed,cloud-exposed,pii"}},
			want:        Metadata{RuntimeRisks: []string{"internet-exposed"}},
			wantSkipped: []string{`runtime-risks: unknown runtime risk "cloud-exposed"`, `runtime-risks: unknown runtime risk "pii"`},
		},
		{
			name:  "nearest runtime risks annotation wins as a whole",
			org:   org,
			chain: []map[string]string{{AnnotationRuntimeRisks: "lateral-movement"}, {AnnotationRuntimeRisks: "internet-exposed,sensitive-data"}},
			want:  Metadata{RuntimeRisks: []string{"lateral-movement"}},
		},
		{
			name:  "an empty runtime risks annotation clears the owner's",
			org:   org,
			chain: []map[string]string{{AnnotationRuntimeRisks: ""}, {AnnotationRuntimeRisks: "internet-exposed"}},
		},
		{
			name:        "a runtime risks annotation without a valid risk clears the owner's",
			org:         org,
			chain:       []map[string]string{{AnnotationRuntimeRisks: "bogus"}, {AnnotationRuntimeRisks: "internet-exposed"}},
			wantSkipped: []string{"unknown runtime risk"},
		},
		{
			name:  "runtime risks and repository are not tags",
			org:   org,
			chain: []map[string]string{{AnnotationRuntimeRisks: "internet-exposed", AnnotationRepository: "app", AnnotationPrefix + "team": "x"}},
			want:  Metadata{Tags: map[string]string{"team": "x"}, RuntimeRisks: []string{"internet-exposed"}, GitHubRepository: "app"},
		},
		{
			name:  "tags, risks and repository from different objects",
			org:   org,
			chain: []map[string]string{tags("team", "pod"), {AnnotationRuntimeRisks: "sensitive-data"}, {AnnotationRepository: "octo-org/app"}},
			want:  Metadata{Tags: map[string]string{"team": "pod"}, RuntimeRisks: []string{"sensitive-data"}, GitHubRepository: "app"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MetadataFrom(tt.org, tt.chain...)
			checkMetadata(t, got, tt.want, tt.wantSkipped)
		})
	}
}

func TestMetadataFromRepository(t *testing.T) {
	const org = "octo-org"
	tests := []struct {
		name        string
		org         string
		chain       []string // repository annotation values, nearest first
		want        string
		wantSkipped []string
	}{
		{name: "name only", org: org, chain: []string{"app"}, want: "app"},
		{name: "owner is the org", org: org, chain: []string{"octo-org/app"}, want: "app"},
		{name: "owner compared case-insensitively", org: org, chain: []string{"Octo-Org/app"}, want: "app"},
		{name: "org compared case-insensitively", org: "OCTO-ORG", chain: []string{"octo-org/app"}, want: "app"},
		{name: "case of the name is kept", org: org, chain: []string{"octo-org/My.App_v2-x"}, want: "My.App_v2-x"},
		{name: "surrounding space is trimmed", org: org, chain: []string{" octo-org/app\n"}, want: "app"},
		{name: "name of MaxRepositoryLength characters", org: org, chain: []string{"octo-org/" + strings.Repeat("r", MaxRepositoryLength)}, want: strings.Repeat("r", MaxRepositoryLength)},
		{name: "the owner does not count towards the length", org: strings.Repeat("o", 39), chain: []string{strings.Repeat("o", 39) + "/" + strings.Repeat("r", MaxRepositoryLength)}, want: strings.Repeat("r", MaxRepositoryLength)},
		{name: "no org accepts any owner", org: "", chain: []string{"someone/app"}, want: "app"},
		{
			name:        "different owner",
			org:         org,
			chain:       []string{"other-org/app"},
			wantSkipped: []string{`repository: owner "other-org" is not the organization "octo-org" records are posted to`},
		},
		{
			name:        "owner that merely contains the org",
			org:         org,
			chain:       []string{"octo-org-fork/app"},
			wantSkipped: []string{`owner "octo-org-fork" is not the organization`},
		},
		{
			name:        "different owner on the pod falls back to the owner object's value",
			org:         org,
			chain:       []string{"other-org/app", "octo-org/fallback"},
			want:        "fallback",
			wantSkipped: []string{`owner "other-org"`},
		},
		{name: "nearest valid value wins", org: org, chain: []string{"pod-repo", "deployment-repo"}, want: "pod-repo"},
		{name: "empty owner", org: org, chain: []string{"/app"}, wantSkipped: []string{`"/app" has an empty owner`}},
		{name: "empty name", org: org, chain: []string{"octo-org/"}, wantSkipped: []string{`"octo-org/" has no repository name`}},
		{name: "empty value", org: org, chain: []string{""}, wantSkipped: []string{`"" has no repository name`}},
		{name: "blank value", org: org, chain: []string{"  "}, wantSkipped: []string{`"" has no repository name`}},
		{name: "two slashes", org: org, chain: []string{"octo-org/app/sub"}, wantSkipped: []string{`"octo-org/app/sub" is not a repository name`}},
		{name: "URL", org: org, chain: []string{"https://github.com/octo-org/app"}, wantSkipped: []string{`owner "https:"`}},
		{name: "space in name", org: org, chain: []string{"my app"}, wantSkipped: []string{`"my app" is not a repository name`}},
		{name: "non-ASCII name", org: org, chain: []string{"appé"}, wantSkipped: []string{"is not a repository name"}},
		{name: "dot", org: org, chain: []string{"."}, wantSkipped: []string{`"." is not a repository name`}},
		{name: "dot dot", org: org, chain: []string{"octo-org/.."}, wantSkipped: []string{`"octo-org/.." is not a repository name`}},
		{
			name:        "name longer than MaxRepositoryLength",
			org:         org,
			chain:       []string{strings.Repeat("r", MaxRepositoryLength+1)},
			wantSkipped: []string{"is longer than 100 characters"},
		},
		{
			name:        "long invalid values are cut in the reason",
			org:         org,
			chain:       []string{strings.Repeat("x y", 30)},
			wantSkipped: []string{`"` + strings.Repeat("x y", 21) + `x"… is not a repository name`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain := make([]map[string]string, 0, len(tt.chain))
			for _, v := range tt.chain {
				chain = append(chain, map[string]string{AnnotationRepository: v})
			}
			got := MetadataFrom(tt.org, chain...)
			checkMetadata(t, got, Metadata{GitHubRepository: tt.want}, tt.wantSkipped)
			for _, s := range got.Skipped {
				if !strings.HasPrefix(s, AnnotationRepository+": ") {
					t.Errorf("Skipped entry %q does not name %s", s, AnnotationRepository)
				}
				if len(s) > 300 {
					t.Errorf("Skipped entry is %d bytes long; reasons must stay bounded", len(s))
				}
			}
			// Whatever was kept is what the API accepts.
			if got.GitHubRepository != "" {
				r := validRecord()
				r.GitHubRepository = got.GitHubRepository
				if err := r.Validate(); err != nil {
					t.Errorf("Validate() of the derived repository: %v", err)
				}
			}
		})
	}
}

func checkMetadata(t *testing.T, got, want Metadata, wantSkipped []string) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Metadata{}, "Skipped")); diff != "" {
		t.Errorf("MetadataFrom (-want +got):\n%s", diff)
	}
	if len(got.Skipped) != len(wantSkipped) {
		t.Fatalf("Skipped = %q, want %d entries containing %q", got.Skipped, len(wantSkipped), wantSkipped)
	}
	for i, s := range got.Skipped {
		if !strings.Contains(s, wantSkipped[i]) {
			t.Errorf("Skipped[%d] = %q, want it to contain %q", i, s, wantSkipped[i])
		}
	}
}
