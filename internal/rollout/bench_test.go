package rollout_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/deployment-tracker/deployment-tracker/internal/owner"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// BenchmarkRetainedWorkload measures the heap the rollout controller keeps alive per tracked workload: 1000
// Deployments (testdata/deployment-complete.json, managed fields and a full pod template included) under
// distinct names, each decoded on its own as the informer decodes them and stored trimmed by Transform or whole,
// reported as live-B/workload (the growth of HeapAlloc after GC, per Deployment); then the same plus 10 Rollouts
// of history per Deployment (2 containers each, every string allocated on its own as if decoded from the
// ledger), reported as live-B/workload+history. ns/op is the time to decode, transform and store the 1000
// Deployments. BenchmarkRetained in internal/podwatch measures the same for pods.
func BenchmarkRetainedWorkload(b *testing.B) {
	const (
		workloads = 1000
		history   = 10
	)
	raw, err := os.ReadFile("testdata/deployment-complete.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		transform func(any) (any, error)
	}{
		{"transform=trim", rollout.Transform},
		{"transform=none", func(obj any) (any, error) { return obj, nil }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var live, liveWithHistory float64
			for b.Loop() {
				b.StopTimer()
				before := retainedHeap()
				b.StartTimer()
				store := make(map[string]any, workloads) // as the informer's indexer: namespace/name → object
				for i := range workloads {
					d := &appsv1.Deployment{}
					if err := json.Unmarshal(raw, d); err != nil {
						b.Fatal(err)
					}
					d.Name = fmt.Sprintf("%s-%05d", d.Name, i)
					obj, err := tc.transform(d)
					if err != nil {
						b.Fatal(err)
					}
					store[d.Namespace+"/"+d.Name] = obj
				}
				b.StopTimer()
				withStore := retainedHeap()
				histories := make(map[string][]rollout.Rollout, workloads)
				for i := range workloads {
					name := fmt.Sprintf("web-%05d", i)
					histories["shop/"+name] = rolloutHistory("shop", name, history)
				}
				withHistory := retainedHeap()
				live += float64(withStore) - float64(before)
				liveWithHistory += float64(withHistory) - float64(before)
				runtime.KeepAlive(store)
				runtime.KeepAlive(histories)
				b.StartTimer()
			}
			b.ReportMetric(live/float64(b.N)/workloads, "live-B/workload")
			b.ReportMetric(liveWithHistory/float64(b.N)/workloads, "live-B/workload+history")
		})
	}
}

// rolloutHistory returns n rollouts of the Deployment namespace/name, one a day, the last one current and the
// others superseded, with two containers each (an app and a sidecar). Every string is a copy of its own, as
// decoding the ledger's records would make it.
func rolloutHistory(namespace, name string, n int) []rollout.Rollout {
	out := make([]rollout.Rollout, n)
	start := time.Date(2025, 1, 10, 8, 0, 0, 0, time.UTC)
	for r := range n {
		started := start.Add(time.Duration(r) * 24 * time.Hour)
		phase, reason, message := rollout.PhaseSuperseded, "NewRevision", fmt.Sprintf("superseded by revision %d", r+2)
		finished := started.Add(24 * time.Hour)
		if r == n-1 {
			phase, reason, message, finished = rollout.PhaseCurrent, "", "Deployment is available. Replicas: 3", time.Time{}
		}
		out[r] = rollout.Rollout{
			Workload: owner.Workload{
				Group: strings.Clone("apps"), Kind: strings.Clone("Deployment"),
				Namespace: strings.Clone(namespace), Name: strings.Clone(name),
			},
			Revision:    int64(r + 1),
			RevisionKey: fmt.Sprintf("%x", sha256.Sum256([]byte(fmt.Sprint(name, r))))[:10],
			Containers: []rollout.Container{
				{
					Name:   strings.Clone("app"),
					Image:  fmt.Sprintf("ghcr.io/octo-org/web:1.4.%d", r),
					Digest: digest(name, "app", r),
				},
				{
					Name:   strings.Clone("log-shipper"),
					Image:  fmt.Sprintf("docker.io/fluent/fluent-bit:3.0.%d", r),
					Digest: digest(name, "log-shipper", r),
				},
			},
			Phase:        rollout.Phase(strings.Clone(string(phase))),
			Reason:       strings.Clone(reason),
			Message:      message,
			Started:      started,
			Submitted:    started.Add(time.Second),
			SubmittedBy:  strings.Clone("webhook"),
			FirstRunning: started.Add(4 * time.Second),
			Completed:    started.Add(95 * time.Second),
			Finished:     finished,
			Ready:        3,
			Desired:      3,
		}
	}
	return out
}

func digest(parts ...any) string {
	sum := sha256.Sum256([]byte(fmt.Sprint(parts...)))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// retainedHeap returns the live heap after two collections (the second frees what the first's finalizers kept).
func retainedHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
