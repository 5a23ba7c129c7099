package record

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Annotations read from pods and their owners.
const (
	// AnnotationPrefix marks deployment record metadata: metadata.github.com/<key> becomes tag <key>.
	AnnotationPrefix = "metadata.github.com/"
	// AnnotationRuntimeRisks holds a comma-separated list of runtime risks.
	AnnotationRuntimeRisks = AnnotationPrefix + "runtime-risks"
	// AnnotationRepository holds "repo" or "owner/repo": the repository, in the organization the records are
	// posted to, that images without a provenance attestation are linked to. Only "repo" is sent, as
	// github_repository.
	AnnotationRepository = AnnotationPrefix + "repository"
)

// Documented limits of the deployment record API on what annotations contribute; see also the field limits
// that Record.Validate enforces.
const (
	MaxTags         = 5
	MaxTagLength    = 100
	MaxRuntimeRisks = 4
)

// RuntimeRisks are the values GitHub accepts in runtime_risks.
var RuntimeRisks = []string{"critical-resource", "internet-exposed", "lateral-movement", "sensitive-data"}

// repositoryPattern is the API's pattern for github_repository: a repository name, without its owner.
var repositoryPattern = regexp.MustCompile(`^[A-Za-z0-9.\-_]+$`)

// Metadata is what the annotations of a pod and its owners contribute to a record.
type Metadata struct {
	Tags             map[string]string
	RuntimeRisks     []string
	GitHubRepository string
	// Skipped lists annotations that were ignored and why (invalid values, limits); for logging.
	Skipped []string
}

// MetadataFrom aggregates the metadata annotations of a chain of objects, nearest first (the pod, then its
// owner, then the owner's owner), for records posted to the organization org. The nearest valid value wins for
// a tag and for the repository; the nearest runtime-risks annotation wins even when none of its values is valid.
// Tags beyond MaxTags are dropped in key order so the same ones are kept every time.
//
// The repository annotation may be "repo" or "owner/repo". GitHub's github_repository is a repository name in
// org, so an owner must equal org (case-insensitively, as GitHub compares logins) and only the name is kept; a
// different owner or an invalid name is skipped. An empty org (a dry run without ORG) accepts any owner.
func MetadataFrom(org string, chain ...map[string]string) Metadata {
	var m Metadata
	risks := map[string]bool{}
	risksSet := false
	for _, ann := range chain {
		keys := make([]string, 0, len(ann))
		for k := range ann {
			if strings.HasPrefix(k, AnnotationPrefix) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := ann[k]
			switch k {
			case AnnotationRuntimeRisks:
				if risksSet {
					continue // a nearer object already set the risks
				}
				risksSet = true
				for _, r := range strings.Split(v, ",") {
					r = strings.ToLower(strings.TrimSpace(r))
					if r == "" {
						continue
					}
					if !slices.Contains(RuntimeRisks, r) {
						m.Skipped = append(m.Skipped, k+": unknown runtime risk "+quote(r))
						continue
					}
					risks[r] = true
				}
			case AnnotationRepository:
				if m.GitHubRepository != "" {
					continue
				}
				repo, err := repositoryIn(org, v)
				if err != nil {
					m.Skipped = append(m.Skipped, k+": "+err.Error())
					continue
				}
				m.GitHubRepository = repo
			default:
				tag := strings.TrimPrefix(k, AnnotationPrefix)
				if _, ok := m.Tags[tag]; ok {
					continue
				}
				if tag == "" {
					m.Skipped = append(m.Skipped, k+": empty tag key")
					continue
				}
				if utf8.RuneCountInString(tag) > MaxTagLength || utf8.RuneCountInString(v) > MaxTagLength {
					m.Skipped = append(m.Skipped, k+": tag key or value longer than 100 characters")
					continue
				}
				if m.Tags == nil {
					m.Tags = map[string]string{}
				}
				m.Tags[tag] = v
			}
		}
	}
	if len(m.Tags) > MaxTags {
		keys := make([]string, 0, len(m.Tags))
		for k := range m.Tags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys[MaxTags:] {
			delete(m.Tags, k)
			m.Skipped = append(m.Skipped, AnnotationPrefix+k+": more than 5 tags")
		}
	}
	if len(risks) > 0 {
		m.RuntimeRisks = make([]string, 0, len(risks))
		for _, r := range RuntimeRisks {
			if risks[r] {
				m.RuntimeRisks = append(m.RuntimeRisks, r)
			}
		}
	}
	return m
}

// repositoryIn returns the repository name of an annotation value "repo" or "owner/repo" whose owner is org.
// The errors are reasons for Metadata.Skipped; they quote the value, which is an annotation, not a secret.
func repositoryIn(org, v string) (string, error) {
	v = strings.TrimSpace(v)
	repo := v
	if owner, name, ok := strings.Cut(v, "/"); ok {
		if owner == "" {
			return "", fmt.Errorf("%s has an empty owner, want repo or owner/repo", quote(v))
		}
		if org != "" && !strings.EqualFold(owner, org) {
			return "", fmt.Errorf("owner %s is not the organization %s records are posted to", quote(owner), quote(org))
		}
		repo = name
	}
	switch {
	case repo == "":
		return "", fmt.Errorf("%s has no repository name, want repo or owner/repo", quote(v))
	case utf8.RuneCountInString(repo) > MaxRepositoryLength:
		return "", fmt.Errorf("repository name %s is longer than %d characters", quote(repo), MaxRepositoryLength)
	case !repositoryPattern.MatchString(repo):
		return "", fmt.Errorf("%s is not a repository name, want repo or owner/repo of letters, digits, '.', '-' and '_'", quote(v))
	case repo == "." || repo == "..":
		// The pattern allows them, but no repository can be named so.
		return "", fmt.Errorf("%s is not a repository name", quote(v))
	}
	return repo, nil
}

// quote quotes an annotation value for a log message, cut to a bounded length: annotations can be large.
func quote(s string) string {
	const limit = 64
	if utf8.RuneCountInString(s) <= limit {
		return strconv.Quote(s)
	}
	return strconv.Quote(string([]rune(s)[:limit])) + "…"
}
