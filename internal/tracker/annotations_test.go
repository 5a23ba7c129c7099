package tracker

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// TestSharedAnnotations: pods of a workload with equal annotations hold one map; other annotations their own.
func TestSharedAnnotations(t *testing.T) {
	same := func(a, b map[string]string) bool { return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer() }
	ws := &workloadState{pods: map[types.NamespacedName]*podState{}}
	add := func(name string, a map[string]string) map[string]string {
		got := ws.sharedAnnotations(a)
		ws.pods[types.NamespacedName{Namespace: "shop", Name: name}] = &podState{annotations: got}
		return got
	}
	first := add("web-1", map[string]string{"metadata.github.com/team": "payments"})
	if got := add("web-2", map[string]string{"metadata.github.com/team": "payments"}); !same(got, first) {
		t.Error("equal annotations of a second pod kept as a map of their own")
	}
	other := map[string]string{"metadata.github.com/team": "checkout"}
	if got := add("web-3", other); !same(got, other) || got["metadata.github.com/team"] != "checkout" {
		t.Errorf("other annotations = %v, want the pod's own", got)
	}
	if got := ws.sharedAnnotations(map[string]string{}); got != nil {
		t.Errorf("empty annotations = %v, want nil", got)
	}
}
