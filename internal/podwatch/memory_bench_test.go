package podwatch_test

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
)

// replicas is how many pods of BenchmarkRetained share a ReplicaSet: its name and UID, pod-template-hash and the
// images and digests of its containers. Only the sidecar's image is shared by every pod.
const replicas = 10

// BenchmarkRetained measures the heap that BENCH_RETAINED_PODS pods (default 1000 and 10000; for example
// BENCH_RETAINED_PODS=10000,50000 for a large cluster) keep alive, per pod, once an informer's store holds them:
// a client-go indexer with the namespace index, as controller-runtime's informers have, holding the pods
// transformed by the cache's transform (compact Pods), stripped by StripPod, or whole. The pods are testdata/pod.json (managed fields included), each
// with its own name, UID and resource version, in ReplicaSets of 10 pods that have their own images; each is
// decoded on its own, as the informer decodes them, so that no string is shared between pods unless the
// transform shares it. Reported as live-B/pod (the growth of HeapAlloc after GC); ns/op is the time to decode
// and store the pods. BenchmarkInformerMemory in internal/e2e measures real informers against an API server.
func BenchmarkRetained(b *testing.B) {
	raw, err := os.ReadFile("testdata/pod.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, pods := range benchSizes(b, "BENCH_RETAINED_PODS", []int{1000, 10000}) {
		for _, tc := range []struct {
			name      string
			transform func(any) (any, error)
		}{
			{"transform=strip", podwatch.Strip},
			{"transform=strip-pod", podwatch.StripPod}, // the stripped corev1.Pod the cache kept before Pod
			{"transform=none", func(obj any) (any, error) { return obj, nil }},
		} {
			b.Run(fmt.Sprintf("pods=%d/%s", pods, tc.name), func(b *testing.B) {
				var live float64
				for b.Loop() {
					b.StopTimer()
					before := liveHeap()
					b.StartTimer()
					store := toolscache.NewIndexer(toolscache.DeletionHandlingMetaNamespaceKeyFunc,
						toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
					for i := range pods {
						pod := &corev1.Pod{}
						if err := json.Unmarshal(benchPodJSON(raw, i), pod); err != nil {
							b.Fatal(err)
						}
						obj, err := tc.transform(pod)
						if err != nil {
							b.Fatal(err)
						}
						if err := store.Add(obj); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					live += float64(liveHeap()) - float64(before)
					if n := len(store.ListKeys()); n != pods {
						b.Fatalf("the store holds %d pods, want %d", n, pods)
					}
					runtime.KeepAlive(store)
					b.StartTimer()
				}
				b.ReportMetric(live/float64(b.N)/float64(pods), "live-B/pod")
			})
		}
	}
}

// benchPodJSON is testdata/pod.json as pod i: its own name, UID and resource version, and the ReplicaSet
// (name, UID, pod-template-hash, images and digests of the app and its migration) of pod i/replicas.
func benchPodJSON(raw []byte, i int) []byte {
	g := i / replicas
	return []byte(strings.NewReplacer(
		"7d4b9c6f8", fmt.Sprintf("%09x", g), // pod-template-hash, in the ReplicaSet's name and the pod's
		"x2k9p", fmt.Sprintf("%05d", i),
		"6c1f0a52-1b7e-4f3e-9a43-2f1d5c0b8e11", fmt.Sprintf("6c1f0a52-1b7e-4f3e-9a43-%012x", i),
		"0f4e2d1c-9b8a-4c7d-8e6f-5a4b3c2d1e0f", fmt.Sprintf("0f4e2d1c-9b8a-4c7d-8e6f-%012x", g),
		"48213377", strconv.Itoa(48213377+i),
		"1.4.2", fmt.Sprintf("1.%d.2", g),
		"9f8e7d6c5b4a39281706f5e4d3c2b1a0", fmt.Sprintf("%032x", g),
		"1a2b3c4d5e6f708192a3b4c5d6e7f809", fmt.Sprintf("%032x", g+1<<40),
	).Replace(string(raw)))
}

// benchSizes reads a comma-separated list of positive integers from the environment variable name, def when
// unset.
func benchSizes(b *testing.B, name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want comma-separated positive integers", name, v)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// liveHeap returns the live heap after two collections (the second frees what the first's finalizers kept).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
