package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// NodeAnnotation marks the nodes kwok manages (kwok runs with
	// --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake); the value is "fake".
	NodeAnnotation = "kwok.x-k8s.io/node"
	// NodeLabel is the label every fake node carries, with value NodeLabelValue: select on it to pin pods.
	NodeLabel = "type"
	// NodeLabelValue is the value of NodeLabel.
	NodeLabelValue = "kwok"
)

// nodeName names the i-th fake node.
func nodeName(i int) string { return fmt.Sprintf("kwok-node-%d", i) }

// newNode is a fake node as a kubelet would register it, minus the status kwok fills in (node-initialize
// stage). No taints: the TaintNodesByCondition admission plugin adds node.kubernetes.io/not-ready, which the
// controller manager's node-lifecycle controller removes once kwok reports the node Ready.
func newNode(name string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				NodeLabel:                       NodeLabelValue,
				corev1.LabelHostname:            name,
				corev1.LabelOSStable:            "linux",
				corev1.LabelArchStable:          "amd64",
				"node-role.kubernetes.io/agent": "",
			},
			Annotations: map[string]string{
				NodeAnnotation:                 "fake",
				"node.alpha.kubernetes.io/ttl": "0",
			},
		},
	}
}

// createNodes creates the fake nodes.
func createNodes(ctx context.Context, c client.Client, names []string) error {
	for _, name := range names {
		if err := c.Create(ctx, newNode(name)); err != nil {
			return fmt.Errorf("create node %s: %w", name, err)
		}
	}
	return nil
}

// nodesReady reports whether every node is Ready and free of NoSchedule/NoExecute taints, so that pods
// schedule onto it; otherwise it describes the first node that is not.
func nodesReady(ctx context.Context, c client.Client, names []string) (bool, string) {
	for _, name := range names {
		var n corev1.Node
		if err := c.Get(ctx, client.ObjectKey{Name: name}, &n); err != nil {
			return false, fmt.Sprintf("get node %s: %s", name, err)
		}
		ready := false
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return false, fmt.Sprintf("node %s is not Ready (kwok)", name)
		}
		for _, t := range n.Spec.Taints {
			if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
				return false, fmt.Sprintf("node %s still has taint %s (kube-controller-manager node-lifecycle)", name, t.ToString())
			}
		}
	}
	return true, ""
}

// ImageID returns the status.containerStatuses[].imageID the kwok pod-ready stage (kwok-stages.yaml) reports
// for image, mirroring how containerd reports a pulled image: "<repository>@sha256:<hex>", where the repository
// is the image name as written without tag or digest. A digest-pinned image reports its own digest; any other
// image a digest derived deterministically from the image string (sha256 of it), so tests can predict it.
func ImageID(image string) string {
	name, digest, pinned := strings.Cut(image, "@")
	if !pinned {
		sum := sha256.Sum256([]byte(image))
		digest = "sha256:" + hex.EncodeToString(sum[:])
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i] // drop the tag; a registry port is followed by a '/'
	}
	return name + "@" + digest
}
