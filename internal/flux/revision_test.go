package flux

import "testing"

const (
	sha1A = "0123456789abcdef0123456789abcdef01234567"
	sha1B = "89abcdef0123456789abcdef0123456789abcdef"
)

func TestParseRevision(t *testing.T) {
	tests := []struct {
		name, rev     string
		wantRef, want string
		wantOK        bool
	}{
		{name: "branch", rev: "main@sha1:" + sha1A, wantRef: "main", want: sha1A, wantOK: true},
		{name: "named ref", rev: "refs/heads/release/1.x@sha1:" + sha1A, wantRef: "refs/heads/release/1.x", want: sha1A, wantOK: true},
		{name: "tag", rev: "v1.2.3@sha1:" + sha1A, wantRef: "v1.2.3", want: sha1A, wantOK: true},
		{name: "upper case", rev: "main@sha1:0123456789ABCDEF0123456789ABCDEF01234567", wantRef: "main", want: sha1A, wantOK: true},
		{name: "commit only", rev: "sha1:" + sha1A, want: sha1A, wantOK: true},
		{name: "before Flux 2.0", rev: "main/" + sha1A, wantRef: "main", want: sha1A, wantOK: true},
		{name: "bare SHA", rev: sha1A, want: sha1A, wantOK: true},
		{name: "OCI digest", rev: "latest@sha256:" + sha1A + sha1A[:24]},
		{name: "Bucket checksum", rev: "sha256:" + sha1A + sha1A[:24]},
		{name: "short SHA", rev: "main@sha1:0123456"},
		{name: "not hex", rev: "main@sha1:0123456789abcdef0123456789abcdef0123456z"},
		{name: "empty", rev: ""},
		{name: "slash only", rev: "/" + sha1A},
		{name: "branch without SHA", rev: "main/feature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, sha, ok := ParseRevision(tt.rev)
			if ref != tt.wantRef || sha != tt.want || ok != tt.wantOK {
				t.Errorf("ParseRevision(%q) = %q, %q, %t; want %q, %q, %t", tt.rev, ref, sha, ok, tt.wantRef, tt.want, tt.wantOK)
			}
		})
	}
}
