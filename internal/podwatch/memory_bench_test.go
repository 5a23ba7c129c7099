package podwatch_test

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
)

// BenchmarkRetained measures the heap that 1000 pods keep alive, per pod, once an informer's store holds them:
// stripped by the cache transform or whole. The pods are testdata/pod.json (managed fields included) under
// distinct names, each decoded on its own as the informer decodes them, so that no string is shared between
// pods. Reported as live-B/pod (the growth of HeapAlloc after GC); ns/op is the time to decode and store the
// 1000 pods. BenchmarkInformerMemory in internal/e2e measures real informers against an API server.
func BenchmarkRetained(b *testing.B) {
	const pods = 1000
	raw, err := os.ReadFile("testdata/pod.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		transform func(any) (any, error)
	}{
		{"transform=strip", podwatch.Strip},
		{"transform=none", func(obj any) (any, error) { return obj, nil }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var live float64
			for b.Loop() {
				b.StopTimer()
				before := liveHeap()
				b.StartTimer()
				store := make(map[string]any, pods) // as the informer's indexer: namespace/name → object
				for i := range pods {
					pod := &corev1.Pod{}
					if err := json.Unmarshal(raw, pod); err != nil {
						b.Fatal(err)
					}
					pod.Name = fmt.Sprintf("%s-%05d", pod.Name, i)
					obj, err := tc.transform(pod)
					if err != nil {
						b.Fatal(err)
					}
					store[pod.Namespace+"/"+pod.Name] = obj
				}
				b.StopTimer()
				live += float64(liveHeap()) - float64(before)
				runtime.KeepAlive(store)
				b.StartTimer()
			}
			b.ReportMetric(live/float64(b.N)/pods, "live-B/pod")
		})
	}
}

// liveHeap returns the live heap after two collections (the second frees what the first's finalizers kept).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
