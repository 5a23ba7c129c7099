package controller

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// modifiedRS returns rs changed by change.
func modifiedRS(rs *appsv1.ReplicaSet, change func(*appsv1.ReplicaSet)) *appsv1.ReplicaSet {
	change(rs)
	return rs
}

// argoReplicaSet returns the ReplicaSet of the Argo Rollout shop/checkout for the template of hash, numbered
// revision, created at created.
func argoReplicaSet(hash, revision string, created time.Time) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{
		Namespace: "shop", Name: "checkout-" + hash,
		Labels:            map[string]string{podwatch.LabelRolloutsPodTemplateHash: hash},
		Annotations:       map[string]string{podwatch.AnnotationRolloutRevision: revision},
		CreationTimestamp: metav1.NewTime(created),
		OwnerReferences:   []metav1.OwnerReference{controllerRef("argoproj.io/v1alpha1", "Rollout", "checkout")},
	}}
}

// statefulSet returns the StatefulSet shop/db whose status.updateRevision is updateRevision.
func statefulSet(updateRevision string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db", UID: "uid-db", Generation: 2},
		Status:     appsv1.StatefulSetStatus{ObservedGeneration: 2, UpdateRevision: updateRevision, CurrentRevision: "db-5b8c7d9f4"},
	}
}

// controllerRevision returns the ControllerRevision name of the workload of kind named ownerName, numbered
// revision, with the controller-revision-hash label hash ("" for none), created at created.
func controllerRevision(kind, ownerName, name, hash string, revision int64, created time.Time) *appsv1.ControllerRevision {
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "shop", Name: name, CreationTimestamp: metav1.NewTime(created),
			OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", kind, ownerName)},
		},
		Revision: revision,
	}
	if hash != "" {
		cr.Labels = map[string]string{podwatch.LabelControllerRevisionHash: hash}
	}
	return cr
}

func TestCurrent(t *testing.T) {
	checkout := owner.Workload{Group: "argoproj.io", Kind: "Rollout", Namespace: "shop", Name: "checkout"}
	db := owner.Workload{Group: "apps", Kind: "StatefulSet", Namespace: "shop", Name: "db"}
	agent := owner.Workload{Group: "apps", Kind: "DaemonSet", Namespace: "shop", Name: "agent"}
	tests := []struct {
		name       string
		workload   owner.Workload
		objects    []client.Object
		want       rollout.Revision
		wantOK     bool
		regression string // set when the test pins the documented behaviour and the code differs
	}{
		{
			name:     "Deployment: the ReplicaSet with the highest revision annotation",
			workload: web,
			objects: []client.Object{
				replicaSet("web", hashV140, "1", at(1)),
				replicaSet("web", hashV160, "3", at(20)),
				replicaSet("web", hashV150, "2", at(10)),
			},
			want:   rollout.Revision{Number: 3, Key: hashV160, Created: at(20)},
			wantOK: true,
		},
		{
			name:     "Deployment: revisions compare as numbers, not strings",
			workload: web,
			objects: []client.Object{
				replicaSet("web", hashV140, "9", at(1)),
				replicaSet("web", hashV150, "10", at(10)),
			},
			want:   rollout.Revision{Number: 10, Key: hashV150, Created: at(10)},
			wantOK: true,
		},
		{
			name:     "Deployment: a rollback renumbers an old ReplicaSet, which wins",
			workload: web,
			objects: []client.Object{
				replicaSet("web", hashV140, "3", at(1)),
				replicaSet("web", hashV150, "2", at(10)),
			},
			want:   rollout.Revision{Number: 3, Key: hashV140, Created: at(1)},
			wantOK: true,
		},
		{
			name:     "Deployment: a ReplicaSet without the revision annotation is ignored",
			workload: web,
			objects: []client.Object{
				replicaSet("web", hashV140, "1", at(1)),
				replicaSet("web", hashV150, "", at(10)),
			},
			want:   rollout.Revision{Number: 1, Key: hashV140, Created: at(1)},
			wantOK: true,
		},
		{
			name:     "Deployment: a ReplicaSet with a revision that is not a positive number is ignored",
			workload: web,
			objects: []client.Object{
				replicaSet("web", hashV140, "1", at(1)),
				replicaSet("web", hashV150, "two", at(10)),
				replicaSet("web", hashV160, "0", at(20)),
			},
			want:   rollout.Revision{Number: 1, Key: hashV140, Created: at(1)},
			wantOK: true,
		},
		{
			name:     "Deployment: a ReplicaSet without the pod-template-hash label is ignored",
			workload: web,
			objects: []client.Object{
				replicaSet("web", hashV140, "1", at(1)),
				modifiedRS(replicaSet("web", hashV150, "2", at(10)), func(rs *appsv1.ReplicaSet) {
					delete(rs.Labels, podwatch.LabelPodTemplateHash)
				}),
			},
			want:   rollout.Revision{Number: 1, Key: hashV140, Created: at(1)},
			wantOK: true,
		},
		{
			name:     "Deployment: the ReplicaSets of another Deployment are ignored",
			workload: web,
			objects: []client.Object{
				replicaSet("web", hashV140, "1", at(1)),
				replicaSet("api", hashV150, "7", at(10)),
			},
			want:   rollout.Revision{Number: 1, Key: hashV140, Created: at(1)},
			wantOK: true,
		},
		{
			name:     "Deployment: the ReplicaSets of the Deployment of the same name in another namespace are ignored",
			workload: web,
			objects: []client.Object{
				replicaSet("web", hashV140, "1", at(1)),
				modifiedRS(replicaSet("web", hashV150, "7", at(10)), func(rs *appsv1.ReplicaSet) { rs.Namespace = "staging" }),
			},
			want:   rollout.Revision{Number: 1, Key: hashV140, Created: at(1)},
			wantOK: true,
		},
		{
			name:     "Deployment: a ReplicaSet it owns but does not control is ignored",
			workload: web,
			objects: []client.Object{
				replicaSet("web", hashV140, "1", at(1)),
				modifiedRS(replicaSet("web", hashV150, "2", at(10)), func(rs *appsv1.ReplicaSet) {
					rs.OwnerReferences[0].Controller = nil
				}),
			},
			want:   rollout.Revision{Number: 1, Key: hashV140, Created: at(1)},
			wantOK: true,
		},
		{
			name:     "Deployment: the ReplicaSets of an Argo Rollout of the same name are ignored",
			workload: owner.Workload{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "checkout"},
			objects:  []client.Object{argoReplicaSet(hashV140, "4", at(1))},
		},
		{
			name:     "Deployment: no ReplicaSet yet is not known",
			workload: web,
			objects:  []client.Object{deployment(1, hashV140, rollingOut)},
		},
		{
			name:     "Deployment: only ReplicaSets not numbered yet is not known",
			workload: web,
			objects:  []client.Object{replicaSet("web", hashV140, "", at(1))},
		},
		{
			name:     "Argo Rollout: the ReplicaSet with the highest rollout.argoproj.io/revision, keyed by rollouts-pod-template-hash",
			workload: checkout,
			objects: []client.Object{
				argoReplicaSet(hashV140, "4", at(1)),
				argoReplicaSet(hashV150, "5", at(10)),
			},
			want:   rollout.Revision{Number: 5, Key: hashV150, Created: at(10)},
			wantOK: true,
		},
		{
			name:     "Argo Rollout: a ReplicaSet numbered with the Deployment annotation only is ignored",
			workload: checkout,
			objects: []client.Object{
				argoReplicaSet(hashV140, "4", at(1)),
				modifiedRS(argoReplicaSet(hashV150, "", at(10)), func(rs *appsv1.ReplicaSet) {
					rs.Annotations = map[string]string{podwatch.AnnotationDeploymentRevision: "5"}
				}),
			},
			want:   rollout.Revision{Number: 4, Key: hashV140, Created: at(1)},
			wantOK: true,
		},
		{
			name:     "Argo Rollout: a ReplicaSet without rollouts-pod-template-hash is ignored",
			workload: checkout,
			objects: []client.Object{
				modifiedRS(argoReplicaSet(hashV140, "4", at(1)), func(rs *appsv1.ReplicaSet) {
					rs.Labels = map[string]string{podwatch.LabelPodTemplateHash: hashV140}
				}),
			},
		},
		{
			name:     "StatefulSet: the ControllerRevision named by status.updateRevision, keyed by its name",
			workload: db,
			objects: []client.Object{
				statefulSet("db-7c9f8d6b5"),
				controllerRevision("StatefulSet", "db", "db-5b8c7d9f4", "5b8c7d9f4", 1, at(1)),
				controllerRevision("StatefulSet", "db", "db-7c9f8d6b5", "7c9f8d6b5", 2, at(10)),
			},
			want:   rollout.Revision{Number: 2, Key: "db-7c9f8d6b5", Created: at(10)},
			wantOK: true,
		},
		{
			name:     "StatefulSet: the update revision wins over a higher one (a rollback in progress is not undone)",
			workload: db,
			objects: []client.Object{
				statefulSet("db-5b8c7d9f4"),
				controllerRevision("StatefulSet", "db", "db-5b8c7d9f4", "5b8c7d9f4", 3, at(1)),
				controllerRevision("StatefulSet", "db", "db-7c9f8d6b5", "7c9f8d6b5", 2, at(10)),
			},
			want:   rollout.Revision{Number: 3, Key: "db-5b8c7d9f4", Created: at(1)},
			wantOK: true,
		},
		{
			name:     "StatefulSet: the ControllerRevision of status.updateRevision not in the cache yet is not known",
			workload: db,
			objects: []client.Object{
				statefulSet("db-7c9f8d6b5"),
				controllerRevision("StatefulSet", "db", "db-5b8c7d9f4", "5b8c7d9f4", 1, at(1)),
			},
		},
		{
			name:     "StatefulSet: no status.updateRevision yet is not known",
			workload: db,
			objects: []client.Object{
				statefulSet(""),
				controllerRevision("StatefulSet", "db", "db-5b8c7d9f4", "5b8c7d9f4", 1, at(1)),
			},
		},
		{
			name:     "StatefulSet: gone is not known",
			workload: db,
			objects:  []client.Object{controllerRevision("StatefulSet", "db", "db-5b8c7d9f4", "5b8c7d9f4", 1, at(1))},
		},
		{
			name:     "DaemonSet: the ControllerRevision with the highest revision, keyed by its controller-revision-hash label",
			workload: agent,
			objects: []client.Object{
				controllerRevision("DaemonSet", "agent", "agent-5d4f8b7c9", "5d4f8b7c9", 1, at(1)),
				controllerRevision("DaemonSet", "agent", "agent-6c9b7f5d8", "6c9b7f5d8", 3, at(20)),
				controllerRevision("DaemonSet", "agent", "agent-7f8d6c4b9", "7f8d6c4b9", 2, at(10)),
			},
			want:   rollout.Revision{Number: 3, Key: "6c9b7f5d8", Created: at(20)},
			wantOK: true,
		},
		{
			name:     "DaemonSet: a ControllerRevision without the controller-revision-hash label is ignored",
			workload: agent,
			objects: []client.Object{
				controllerRevision("DaemonSet", "agent", "agent-5d4f8b7c9", "5d4f8b7c9", 1, at(1)),
				controllerRevision("DaemonSet", "agent", "agent-6c9b7f5d8", "", 2, at(20)),
			},
			want:   rollout.Revision{Number: 1, Key: "5d4f8b7c9", Created: at(1)},
			wantOK: true,
		},
		{
			name:     "DaemonSet: the ControllerRevisions of another DaemonSet or a StatefulSet of the same name are ignored",
			workload: agent,
			objects: []client.Object{
				controllerRevision("DaemonSet", "agent", "agent-5d4f8b7c9", "5d4f8b7c9", 1, at(1)),
				controllerRevision("DaemonSet", "proxy", "proxy-6c9b7f5d8", "6c9b7f5d8", 4, at(20)),
				controllerRevision("StatefulSet", "agent", "agent-7f8d6c4b9", "7f8d6c4b9", 5, at(20)),
			},
			want:   rollout.Revision{Number: 1, Key: "5d4f8b7c9", Created: at(1)},
			wantOK: true,
		},
		{
			name:     "DaemonSet: no ControllerRevision yet is not known",
			workload: agent,
			objects:  []client.Object{controllerRevision("DaemonSet", "proxy", "proxy-6c9b7f5d8", "6c9b7f5d8", 4, at(20))},
		},
		{
			name:     "Job: not known",
			workload: owner.Workload{Group: "batch", Kind: "Job", Namespace: "shop", Name: "web"},
			objects:  []client.Object{replicaSet("web", hashV140, "1", at(1))},
		},
		{
			name:     "bare Pod: not known",
			workload: owner.Workload{Kind: "Pod", Namespace: "shop", Name: "web"},
		},
		{
			name:     "Deployment of another group: not known",
			workload: owner.Workload{Group: "extensions", Kind: "Deployment", Namespace: "shop", Name: "web"},
			objects:  []client.Object{replicaSet("web", hashV140, "1", at(1))},
		},
		{
			name:     "Deployment: the ReplicaSets left by an earlier Deployment of the same name are ignored",
			workload: web,
			objects: []client.Object{
				deployment(1, hashV160, rollingOut), // UID uid-web
				modifiedRS(replicaSet("web", hashV140, "5", at(1)), func(rs *appsv1.ReplicaSet) {
					rs.OwnerReferences[0].UID = "uid-web-deleted" // garbage the collector has not removed yet
				}),
				replicaSet("web", hashV160, "1", at(20)),
			},
			want:   rollout.Revision{Number: 1, Key: hashV160, Created: at(20)},
			wantOK: true,
			regression: "Current matches ReplicaSets by the controller's name only (IndexController is group/kind/name, no UID): " +
				"right after a Deployment is deleted and created again under the same name, the old incarnation's " +
				"ReplicaSets (higher revisions, awaiting garbage collection) win, a rollout of an old revision starts, and " +
				"the new incarnation's revisions then look lower than the latest: nothing is decided for them until their " +
				"numbers pass the old ones",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Config{Reader: newCluster(t, tc.objects...)})
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			got, ok, err := c.Current(t.Context(), tc.workload)
			if err != nil {
				t.Fatalf("Current() error = %v", err)
			}
			if ok != tc.wantOK {
				t.Errorf("Current() known = %t, want %t", ok, tc.wantOK)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Current() revision mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
