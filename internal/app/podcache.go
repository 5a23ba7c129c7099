//go:build !wholepods

package app

import (
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
)

// podCache sets how the cache keeps pods: compact (podwatch.Strip, which also strips owner metadata), read back
// as pods through podwatch.NewInformer. The wholepods build tag (podcache_wholepods.go) swaps it for whole pods,
// for BenchmarkProcessMemory in internal/e2e only.
func podCache(opts *cache.Options) {
	opts.DefaultTransform = podwatch.Strip
	opts.NewInformer = podwatch.NewInformer
}
