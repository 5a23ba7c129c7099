package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/testenv"
)

const waitTimeout = 60 * time.Second

// quiet is how long a test watches for posts that must not happen (after scaling, restarts…).
const quiet = 2 * time.Second

func newNamespace(t *testing.T) string {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := "e2e-" + strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimSuffix(name, "-") + "-" + hex.EncodeToString(b)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			env.KeepLog()
			t.Logf("records in %s: %+v", name, recordsIn(name))
		}
		_ = env.Client.Delete(context.Background(), ns)
	})
	return name
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// recordsIn returns the records gh accepted for deployments of namespace ns, in order.
func recordsIn(ns string) []record.Record {
	var out []record.Record
	for _, r := range gh.Accepted() {
		if strings.HasPrefix(r.DeploymentName, ns+"/") {
			out = append(out, r)
		}
	}
	return out
}

// waitRecords waits until the records accepted for ns satisfy cond.
func waitRecords(t *testing.T, ns, what string, cond func([]record.Record) bool) []record.Record {
	t.Helper()
	ctx := ctxFor(t)
	err := gh.WaitFor(ctx, func([]record.Record) bool { return cond(recordsIn(ns)) })
	if err != nil {
		t.Fatalf("waiting for %s: %v; records: %+v; control plane: %v", what, err, recordsIn(ns), env.Err())
	}
	return recordsIn(ns)
}

// waitCount waits for exactly n records in ns, then checks that no more arrive for a while.
func waitCount(t *testing.T, ns string, n int) []record.Record {
	t.Helper()
	waitRecords(t, ns, fmt.Sprintf("%d records", n), func(rs []record.Record) bool { return len(rs) >= n })
	stayCount(t, ns, n)
	return recordsIn(ns)
}

// stayCount checks that ns keeps exactly n records for the quiet period.
func stayCount(t *testing.T, ns string, n int) {
	t.Helper()
	deadline := time.Now().Add(quiet)
	for time.Now().Before(deadline) {
		if got := len(recordsIn(ns)); got != n {
			t.Fatalf("got %d records, want %d: %+v", got, n, recordsIn(ns))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// digestOf is the digest kwok reports running for image.
func digestOf(t *testing.T, image string) string {
	t.Helper()
	d, ok := record.RegistryDigest(testenv.ImageID(image))
	if !ok {
		t.Fatalf("no digest for %s", image)
	}
	return d
}

// want builds the record the tracker must post for a container.
func want(ns, workload, container, name, digest, version string, status record.Status) record.Record {
	return record.Record{
		Name: name, Digest: digest, Version: version, Status: status,
		LogicalEnvironment: logicalEnvironment, PhysicalEnvironment: physicalEnvironment, Cluster: cluster,
		DeploymentName: ns + "/" + workload + "/" + container,
	}
}

func podTemplate(labels map[string]string, containers ...corev1.Container) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: containers, TerminationGracePeriodSeconds: ptr.To[int64](0)},
	}
}

func deployment(ns, name string, replicas int32, containers ...corev1.Container) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podTemplate(labels, containers...),
		},
	}
}

func container(name, image string) corev1.Container {
	return corev1.Container{Name: name, Image: image}
}

// waitRunning waits until n pods matching labels in ns run (and no others exist).
func waitRunning(t *testing.T, ns string, labels map[string]string, n int) {
	t.Helper()
	ctx := ctxFor(t)
	for {
		var pods corev1.PodList
		err := env.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(labels))
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
		}
		if err == nil && running == n && len(pods.Items) == n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %d running pods %v in %s: %d of %d running (err %v); control plane: %v",
				n, labels, ns, running, len(pods.Items), err, env.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func mustDelete(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Delete(context.Background(), obj, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatalf("deleting %T %s: %v", obj, obj.GetName(), err)
	}
}

// update re-reads obj, applies change and writes it back, retrying on conflicts.
func update[T client.Object](t *testing.T, obj T, change func(T)) {
	t.Helper()
	ctx := ctxFor(t)
	for {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Fatalf("reading %s: %v", obj.GetName(), err)
		}
		change(obj)
		err := env.Client.Update(ctx, obj)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("updating %s: %v", obj.GetName(), err)
		}
	}
}

func last(rs []record.Record, deploymentName string) (record.Record, int) {
	var r record.Record
	n := 0
	for _, x := range rs {
		if x.DeploymentName == deploymentName {
			r, n = x, n+1
		}
	}
	return r, n
}
