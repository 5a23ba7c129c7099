package ledger

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// defaultPageSize is how many objects one LIST of the ledger returns at most. A ledger of a cluster with much
// churn holds tens of thousands of records: read in one response, they would take the API server's and the
// tracker's memory at once, and a response that large can outlast the request timeout. Pages of 500 are
// client-go's pager default (k8s.io/client-go/tools/pager).
const defaultPageSize = 500

func (l *Ledger) limit() int64 {
	if l.pageSize > 0 {
		return int64(l.pageSize)
	}
	return defaultPageSize
}

// listPages lists the objects of list type L in the ledger's namespace page by page (limit and continue,
// https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks) and
// calls page with each, in order. Every page is a fresh list: page may keep pointers into its items. The pages
// form one consistent snapshot, that of the first; a continue token that expired (410 Gone, after about five
// minutes) fails the listing, which its callers retry from the start.
func listPages[T any, L interface {
	*T
	client.ObjectList
}](ctx context.Context, l *Ledger, page func(L) error, opts ...client.ListOption) error {
	opts = append([]client.ListOption{client.InNamespace(l.Namespace), client.Limit(l.limit())}, opts...)
	cont := ""
	for {
		list := L(new(T))
		if err := l.Reader.List(ctx, list, append(opts, client.Continue(cont))...); err != nil {
			return err
		}
		if err := page(list); err != nil {
			return err
		}
		if cont = list.GetContinue(); cont == "" {
			return nil
		}
	}
}
