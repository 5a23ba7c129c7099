package owner_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
)

// A workload selector matches the labels of the workload a pod resolves to: the top owner's, a bare pod's own,
// none when the workload was not read.
func TestResolveLabels(t *testing.T) {
	web := deployment("web", nil)
	web.Labels = map[string]string{"shard": "a"}
	rs := replicaSet("web-7d4b9c6f8", nil, controllerOf("apps/v1", "Deployment", "web"))
	rs.Labels = map[string]string{"shard": "rs"}
	bare := pod("debug", "", nil)
	bare.Labels = map[string]string{"shard": "b"}
	tests := []struct {
		name string
		pod  *corev1.Pod
		objs bool
		want map[string]string
	}{
		{name: "top owner's labels, not its ReplicaSet's", pod: pod("web-7d4b9c6f8-x2k9p", "7d4b9c6f8", controllerOf("apps/v1", "ReplicaSet", "web-7d4b9c6f8")),
			objs: true, want: map[string]string{"shard": "a"}},
		{name: "bare pod: its own", pod: bare, want: map[string]string{"shard": "b"}},
		{name: "workload gone: none", pod: pod("web-7d4b9c6f8-x2k9p", "7d4b9c6f8", controllerOf("apps/v1", "ReplicaSet", "web-7d4b9c6f8"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &owner.Resolver{Reader: newReader(t, nil)}
			if tt.objs {
				r.Reader = newReader(t, nil, web, rs)
			}
			got, err := r.Resolve(t.Context(), tt.pod)
			if err != nil {
				t.Fatalf("Resolve() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got.Labels); diff != "" {
				t.Errorf("Resolve().Labels mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
