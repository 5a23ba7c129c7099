package app

import (
	"os"

	clientfeatures "k8s.io/client-go/features"
)

// watchListEnv is the variable by which client-go lets a user set its WatchListClient gate.
const watchListEnv = "KUBE_FEATURE_WatchListClient"

// StreamInitialLists makes the informers fill their caches from a watch that streams the objects one by one
// (client-go's WatchListClient, served by API servers from 1.32 on; client-go falls back to a list where it is
// not), unless the user set KUBE_FEATURE_WatchListClient. A list's response is decoded whole before the
// cache transform compacts any pod, so on a large cluster the start-up peak was several times the
// steady memory (docs/benchmarks.md, section 6). Call it first thing, before any client is made.
func StreamInitialLists() {
	if _, set := os.LookupEnv(watchListEnv); set {
		return
	}
	clientfeatures.ReplaceFeatureGates(streamingGates{clientfeatures.FeatureGates()})
}

// streamingGates are client-go's gates with WatchListClient on.
type streamingGates struct{ clientfeatures.Gates }

func (g streamingGates) Enabled(key clientfeatures.Feature) bool {
	if key == clientfeatures.WatchListClient {
		return true
	}
	return g.Gates.Enabled(key)
}
