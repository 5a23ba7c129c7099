//go:build wholepods

package app

import (
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/deployment-tracker/deployment-tracker/internal/podwatch"
)

// podCache of the wholepods build: pods kept whole, as controller-runtime's default cache keeps them, the rest
// as in the shipped build (owner metadata stripped, workloads trimmed). Only BenchmarkProcessMemory in
// internal/e2e builds it, to measure the process the compact pods save; the tracker reads *corev1.Pod events as
// well as compact ones.
func podCache(opts *cache.Options) {
	opts.DefaultTransform = podwatch.StripMetadata
}
