package tracker

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/record"
)

// TestOwnerAnnotationsRefresh: a change of an owner's metadata.github.com/ annotations reaches the records at
// once, through the Refresh request the owner's metadata watch enqueues, not at the workload's next pod event.
func TestOwnerAnnotationsRefresh(t *testing.T) {
	pod := webPod(hash1, "a", 0, []ctr{appV1})
	web := owner.Workload{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "web"}
	refresh := Request{Workload: web, Refresh: true}
	tagged := withMetadata(webApp1, map[string]string{"team": "payments"}, nil, "")
	retagged := withMetadata(webApp1, map[string]string{"team": "checkout"}, nil, "")
	run(t, scenario{
		objects: []client.Object{webDeployment(map[string]string{"metadata.github.com/team": "payments"}), webRS(hash1, nil), pod},
		steps: []step{
			{name: "pod runs", req: podReq(pod.Name), want: []record.Record{tagged}},
			{name: "refresh without change", req: refresh},
			{
				name: "the Deployment's team changes",
				do: []action{change(webDeployment(nil), func(d *appsv1.Deployment) {
					d.Annotations = map[string]string{"metadata.github.com/team": "checkout", "unrelated": "x"}
				})},
				req:  refresh,
				want: []record.Record{retagged},
			},
			{
				name: "the ReplicaSet's team, nearer to the pod, wins",
				do: []action{change(webRS(hash1, nil), func(rs *appsv1.ReplicaSet) {
					rs.Annotations = map[string]string{"metadata.github.com/team": "rs-team"}
				})},
				req:  Request{Workload: owner.Workload{Group: "apps", Kind: "ReplicaSet", Namespace: ns, Name: "web-" + hash1}, Refresh: true},
				want: nil, // the ReplicaSet is not a tracked workload: its Deployment is refreshed
			},
			{name: "its Deployment refreshed", req: refresh, want: []record.Record{withMetadata(webApp1, map[string]string{"team": "rs-team"}, nil, "")}},
			{name: "an untracked workload: nothing", req: Request{Workload: owner.Workload{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "other"}, Refresh: true}},
		},
		counters: map[string]float64{"first_seen/informer": 1},
	})
}

func TestOwnerWorkloads(t *testing.T) {
	rs := &metav1.PartialObjectMetadata{ObjectMeta: objectMeta("web-"+hash1, nil, controllerRef("apps/v1", "Deployment", "web"))}
	got := ownerWorkloads(owner.ReplicaSet, rs)
	want := []owner.Workload{
		{Group: "apps", Kind: "ReplicaSet", Namespace: ns, Name: "web-" + hash1},
		{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "web"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ownerWorkloads() (-want +got):\n%s", diff)
	}
	if got := metadataAnnotations(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
		"metadata.github.com/team": "a", "kubectl.kubernetes.io/last-applied-configuration": "{}",
	}}}); len(got) != 1 || got["metadata.github.com/team"] != "a" {
		t.Errorf("metadataAnnotations() = %v, want only the metadata.github.com/ one", got)
	}
}
