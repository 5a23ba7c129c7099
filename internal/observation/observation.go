// Package observation holds what the admission webhook hands to the tracker: a pod seen at admission.
package observation

import (
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Operation is the admission operation a pod was seen in.
type Operation string

// The operations the webhook observes.
const (
	Create Operation = "CREATE"
	Delete Operation = "DELETE"
)

// Container is one container of a pod with its image reference exactly as submitted.
type Container struct {
	Name  string
	Image string
	Init  bool
}

// Admission is a pod observed by the admission webhook.
type Admission struct {
	Operation  Operation
	Namespace  string
	Name       string
	UID        types.UID
	Containers []Container
	Time       time.Time
}
