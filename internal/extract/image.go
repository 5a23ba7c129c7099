package extract

import "strings"

// ImageTag returns the tag of an image reference as written in a pod spec: the text after the last ":" of the
// repository part (before any "@digest"), or "latest" when there is none, since that is what the runtime pulls.
// "ghcr.io/o/app:v1.2@sha256:…" gives "v1.2", "localhost:5000/app" and "app@sha256:…" give "latest".
//
// It never fails: for every reference github.com/distribution/reference accepts it returns that package's tag
// (the tests hold it to that), and it applies the same rule to text that package rejects, so that an odd image
// still gives a ref that Ref can check and report.
func ImageTag(image string) string {
	repo, _, _ := strings.Cut(image, "@")
	i := strings.LastIndexByte(repo, ':')
	if i < 0 || i < strings.LastIndexByte(repo, '/') || i == len(repo)-1 {
		return "latest"
	}
	return repo[i+1:]
}
