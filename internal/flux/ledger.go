package flux

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Ledger remembers the last revision observed per Kustomization, durably, so that each applied revision is
// observed once across restarts and leaders.
type Ledger interface {
	// Load returns the revisions observed, by Kustomization.
	Load(ctx context.Context) (map[types.NamespacedName]string, error)
	// Observe records revision as observed for k, unless it is recorded already; it reports whether it recorded
	// it (false: another instance, or an earlier life of this one, observed it). It fails with ErrLedgerFull
	// when k is new and the ledger holds MaxLedgerEntries.
	Observe(ctx context.Context, k types.NamespacedName, revision string) (bool, error)
	// Forget removes the entries of Kustomizations that no longer exist.
	Forget(ctx context.Context, ks ...types.NamespacedName) error
}

// LedgerName is the name of the ConfigMap ConfigMapLedger keeps in the ledger namespace.
const LedgerName = "deployment-tracker-flux"

// MaxLedgerEntries bounds the ConfigMap: an entry is about 150 bytes, a ConfigMap at most 1 MiB.
const MaxLedgerEntries = 4096

// ErrLedgerFull is an Observe of a new Kustomization in a ledger that holds MaxLedgerEntries.
var ErrLedgerFull = errors.New("the Flux ledger is full")

// ConfigMapLedger keeps the ledger in one ConfigMap, one key per Kustomization, whose value is
// {"kustomization": "NAMESPACE/NAME", "revision": "..."}. Every write is an update at the resourceVersion read
// (optimistic concurrency): of two leaders racing for the same revision, one gets a conflict, reads again and
// finds the revision observed.
//
// A ConfigMap rather than a CustomResourceDefinition of its own: what is kept is one string per Kustomization,
// written once per applied revision (rarely) by the leader only, read once at start; a ConfigMap needs no CRD
// to install and upgrade (a cluster without Flux gets nothing new), and its size is bounded by the number of
// Kustomizations (MaxLedgerEntries). Its RBAC is get and update on this one name, and create.
type ConfigMapLedger struct {
	// Client writes the ConfigMap; Reader reads it, uncached (the manager's API reader: no ConfigMap informer,
	// and a read that sees the latest write).
	Client    client.Client
	Reader    client.Reader
	Namespace string
	// Name defaults to LedgerName.
	Name string
	// MaxEntries bounds the Kustomizations kept (default MaxLedgerEntries).
	MaxEntries int
}

var _ Ledger = (*ConfigMapLedger)(nil)

type ledgerEntry struct {
	Kustomization string `json:"kustomization"`
	Revision      string `json:"revision"`
}

// ledgerKey is the ConfigMap key of k: NAMESPACE.NAME (namespaces have no dots, so it is unambiguous), made to
// fit the 253 characters of a key with a hash when the name is long.
func ledgerKey(k types.NamespacedName) string {
	key := k.Namespace + "." + k.Name
	if len(key) <= 253 {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return key[:253-17] + "-" + hex.EncodeToString(sum[:8])
}

func (l *ConfigMapLedger) name() string {
	if l.Name == "" {
		return LedgerName
	}
	return l.Name
}

// get reads the ConfigMap; nil when there is none yet.
func (l *ConfigMapLedger) get(ctx context.Context) (*corev1.ConfigMap, error) {
	var cm corev1.ConfigMap
	err := l.Reader.Get(ctx, types.NamespacedName{Namespace: l.Namespace, Name: l.name()}, &cm)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read ConfigMap %s/%s: %w", l.Namespace, l.name(), err)
	}
	return &cm, nil
}

// Load implements Ledger. Entries that do not decode are left out.
func (l *ConfigMapLedger) Load(ctx context.Context) (map[types.NamespacedName]string, error) {
	cm, err := l.get(ctx)
	if err != nil || cm == nil {
		return map[types.NamespacedName]string{}, err
	}
	out := make(map[types.NamespacedName]string, len(cm.Data))
	for _, v := range cm.Data {
		var e ledgerEntry
		if json.Unmarshal([]byte(v), &e) != nil {
			continue
		}
		if k, ok := splitKey(e.Kustomization); ok {
			out[k] = e.Revision
		}
	}
	return out, nil
}

func splitKey(s string) (types.NamespacedName, bool) {
	ns, name, ok := strings.Cut(s, "/")
	return types.NamespacedName{Namespace: ns, Name: name}, ok && ns != "" && name != ""
}

// Observe implements Ledger.
func (l *ConfigMapLedger) Observe(ctx context.Context, k types.NamespacedName, revision string) (bool, error) {
	cm, err := l.get(ctx)
	if err != nil {
		return false, err
	}
	key := ledgerKey(k)
	value, err := json.Marshal(ledgerEntry{Kustomization: k.String(), Revision: revision})
	if err != nil {
		return false, fmt.Errorf("encode the Flux ledger entry of %s: %w", k, err)
	}
	if cm == nil {
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: l.Namespace, Name: l.name(),
				Labels: map[string]string{"app.kubernetes.io/name": "deployment-tracker"},
				Annotations: map[string]string{
					"deployment-tracker.io/description": "The last Flux Kustomization revision whose apply lead time deployment-tracker observed, per Kustomization. Deleting an entry observes its current revision again.",
				},
			},
			Data: map[string]string{key: string(value)},
		}
		if err := l.Client.Create(ctx, cm); err != nil {
			return false, fmt.Errorf("create ConfigMap %s/%s: %w", l.Namespace, l.name(), err)
		}
		return true, nil
	}
	old, exists := cm.Data[key]
	if exists {
		var e ledgerEntry
		if json.Unmarshal([]byte(old), &e) == nil && e.Revision == revision {
			return false, nil
		}
	} else if limit := cmp.Or(l.MaxEntries, MaxLedgerEntries); len(cm.Data) >= limit {
		return false, fmt.Errorf("observe %s: %w (%d entries in ConfigMap %s/%s)", k, ErrLedgerFull, len(cm.Data), l.Namespace, l.name())
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[key] = string(value)
	if err := l.Client.Update(ctx, cm); err != nil {
		return false, fmt.Errorf("update ConfigMap %s/%s: %w", l.Namespace, l.name(), err)
	}
	return true, nil
}

// Forget implements Ledger.
func (l *ConfigMapLedger) Forget(ctx context.Context, ks ...types.NamespacedName) error {
	cm, err := l.get(ctx)
	if err != nil || cm == nil {
		return err
	}
	changed := false
	for _, k := range ks {
		if _, ok := cm.Data[ledgerKey(k)]; ok {
			delete(cm.Data, ledgerKey(k))
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := l.Client.Update(ctx, cm); err != nil {
		return fmt.Errorf("update ConfigMap %s/%s: %w", l.Namespace, l.name(), err)
	}
	return nil
}

// MemoryLedger is a Ledger in memory, for a tracker without a durable ledger (-ledger-namespace=-, -dry-run):
// a restart observes the current revisions again.
type MemoryLedger struct {
	mu  sync.Mutex
	rev map[types.NamespacedName]string
}

var _ Ledger = (*MemoryLedger)(nil)

// Load implements Ledger.
func (m *MemoryLedger) Load(context.Context) (map[types.NamespacedName]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := maps.Clone(m.rev)
	if out == nil {
		out = map[types.NamespacedName]string{}
	}
	return out, nil
}

// Observe implements Ledger.
func (m *MemoryLedger) Observe(_ context.Context, k types.NamespacedName, revision string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rev == nil {
		m.rev = map[types.NamespacedName]string{}
	}
	if m.rev[k] == revision {
		return false, nil
	}
	if _, ok := m.rev[k]; !ok && len(m.rev) >= MaxLedgerEntries {
		return false, fmt.Errorf("observe %s: %w", k, ErrLedgerFull)
	}
	m.rev[k] = revision
	return true, nil
}

// Forget implements Ledger.
func (m *MemoryLedger) Forget(_ context.Context, ks ...types.NamespacedName) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range ks {
		delete(m.rev, k)
	}
	return nil
}
