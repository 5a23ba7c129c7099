package flux

import "strings"

// ParseRevision extracts the git commit SHA from a Flux source revision, as Flux writes it in
// status.lastAppliedRevision (https://fluxcd.io/flux/components/source/gitrepositories/#artifact): the current
// format "<ref>@sha1:<sha>" (ref a branch, a tag or a named ref, possibly empty: "sha1:<sha>"), and the format
// before Flux 2.0, "<branch>/<sha>" or a bare "<sha>". The SHA is returned in lower case. Revisions that name no
// git commit, such as an OCI artifact digest ("latest@sha256:<digest>") or a Bucket checksum, return false.
func ParseRevision(rev string) (ref, sha string, ok bool) {
	rev = strings.TrimSpace(rev)
	if i := strings.LastIndex(rev, "@"); i >= 0 || strings.HasPrefix(rev, "sha1:") {
		ref, digest := "", rev
		if i >= 0 {
			ref, digest = rev[:i], rev[i+1:]
		}
		algo, hex, found := strings.Cut(digest, ":")
		if !found || algo != "sha1" || !isSHA1(hex) {
			return "", "", false
		}
		return ref, strings.ToLower(hex), true
	}
	if strings.Contains(rev, ":") {
		return "", "", false // a digest of another algorithm
	}
	if i := strings.LastIndex(rev, "/"); i >= 0 {
		if isSHA1(rev[i+1:]) && i > 0 {
			return rev[:i], strings.ToLower(rev[i+1:]), true
		}
		return "", "", false
	}
	if isSHA1(rev) {
		return "", strings.ToLower(rev), true
	}
	return "", "", false
}

// isSHA1 reports whether s is a full SHA-1 object name: 40 hexadecimal digits.
func isSHA1(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
			return false
		}
	}
	return true
}
