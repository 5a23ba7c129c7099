package record

import (
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Annotations read from pods and their owners.
const (
	// AnnotationPrefix marks deployment record metadata: metadata.github.com/<key> becomes tag <key>.
	AnnotationPrefix = "metadata.github.com/"
	// AnnotationRuntimeRisks holds a comma-separated list of runtime risks.
	AnnotationRuntimeRisks = AnnotationPrefix + "runtime-risks"
	// AnnotationRepository holds "owner/repo", sent as github_repository.
	AnnotationRepository = AnnotationPrefix + "repository"
)

// Documented limits of the deployment record API.
const (
	MaxTags         = 5
	MaxTagLength    = 100
	MaxRuntimeRisks = 4
)

// RuntimeRisks are the values GitHub accepts in runtime_risks.
var RuntimeRisks = []string{"critical-resource", "internet-exposed", "lateral-movement", "sensitive-data"}

var repositoryPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)

// Metadata is what the annotations of a pod and its owners contribute to a record.
type Metadata struct {
	Tags             map[string]string
	RuntimeRisks     []string
	GitHubRepository string
	// Skipped lists annotations that were ignored and why (invalid values, limits); for logging.
	Skipped []string
}

// MetadataFrom aggregates the metadata annotations of a chain of objects, nearest first (the pod, then its
// owner, then the owner's owner). The nearest object's value wins for a key; tags beyond MaxTags are dropped in
// key order so the same ones are kept every time.
func MetadataFrom(chain ...map[string]string) Metadata {
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
						m.Skipped = append(m.Skipped, k+": unknown runtime risk "+r)
						continue
					}
					risks[r] = true
				}
			case AnnotationRepository:
				if m.GitHubRepository != "" {
					continue
				}
				if !repositoryPattern.MatchString(v) {
					m.Skipped = append(m.Skipped, k+": not owner/repo")
					continue
				}
				m.GitHubRepository = v
			default:
				tag := strings.TrimPrefix(k, AnnotationPrefix)
				if _, ok := m.Tags[tag]; ok {
					continue
				}
				if tag == "" || utf8.RuneCountInString(tag) > MaxTagLength || utf8.RuneCountInString(v) > MaxTagLength {
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
