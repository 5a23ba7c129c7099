package extract_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deployment-tracker/deployment-tracker/internal/extract"
)

func TestImageTag(t *testing.T) {
	tests := []struct {
		name  string
		image string
		want  string
	}{
		{name: "tag and digest", image: "ghcr.io/o/app:v1.2@" + digest, want: "v1.2"},
		{name: "tag", image: "nginx:1.27-alpine", want: "1.27-alpine"},
		{name: "registry port without tag", image: "localhost:5000/app", want: "latest"},
		{name: "registry port and tag", image: "localhost:5000/team/app:main_2024", want: "main_2024"},
		{name: "digest only", image: "app@" + digest, want: "latest"},
		{name: "name only", image: "app", want: "latest"},
		{name: "empty", image: "", want: "latest"},
		{name: "unparsable, string rule", image: "Registry/App:Not Valid", want: "Not Valid"},
		{name: "trailing colon", image: "app:", want: "latest"},
		{name: "colon after digest", image: "app@sha256:abc:def", want: "latest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, extract.ImageTag(tt.image)); diff != "" {
				t.Errorf("ImageTag(%q) (-want +got):\n%s", tt.image, diff)
			}
		})
	}
}
