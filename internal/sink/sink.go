// Package sink defines the contract between the dispatchers and the external systems records and rollouts are
// delivered to, and the error classes the dispatchers use to decide whether and when to retry. A sink takes
// records (Sink), rollout transitions (RolloutSink), or both.
package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deployment-tracker/deployment-tracker/internal/record"
	"github.com/deployment-tracker/deployment-tracker/internal/rollout"
)

// Sink delivers one record to an external system. Post must be safe for concurrent use; it must not retry on
// its own (the dispatcher's workqueue is the only retry layer) and must classify its errors with the types below.
type Sink interface {
	Post(ctx context.Context, r record.Record) error
}

// RolloutSink is told how rollouts progress (internal/dispatch.Rollouts delivers to it). Notify receives the
// rollout as it is now, what this sink acknowledged last and the state it returned then; it returns the state
// to keep for the rollout (for example the id of a message to update next time), which the ledger keeps across
// restarts and leader changes. Delivery is at least once and level-based: Notify must be idempotent (the same
// rollout in the same phase may come again after a crash) and may skip phases it missed. It must be safe for
// concurrent use, must not retry on its own and classifies its errors like Post.
type RolloutSink interface {
	Notify(ctx context.Context, n rollout.Notification) (state map[string]string, err error)
}

// ClusterSink is a Sink that can also deliver many records in a few bulk requests, for example the first sync of
// a cluster whose ledger is empty. Callers find it with a type assertion and deliver with Post what PostCluster
// did not.
type ClusterSink interface {
	Sink
	// PostCluster delivers recs and returns one result per record, in order, always len(recs) of them:
	// results[i] is nil when record i was delivered, else why not, classified like an error of Post (Classify).
	// err is non-nil when a bulk request failed (classified too); the records it carried and the records not
	// sent after it then have results wrapping err. A record with a non-nil result may be delivered again with
	// Post: delivery is an upsert. Like Post, PostCluster never retries a request; it must be safe for concurrent
	// use.
	PostCluster(ctx context.Context, recs []record.Record) (results []error, err error)
}

// PermanentError is a failure that retrying cannot fix (a 4xx other than 408/429 or a rate-limited 403).
type PermanentError struct {
	StatusCode int
	Message    string
}

func (e *PermanentError) Error() string {
	return fmt.Sprintf("permanent failure: status %d: %s", e.StatusCode, e.Message)
}

// NotFoundError is a 404 for an artifact the sink does not know (for example an image that was never attested).
// It is permanent for this digest; the dispatcher caches it negatively for a while.
type NotFoundError struct {
	Message string
}

func (e *NotFoundError) Error() string { return "artifact not found: " + e.Message }

// CredentialsError is an authentication or authorization refusal: a 401, a 403 that is not a rate limit
// (expired or revoked token, SSO not authorized, missing permission), or an App installation token that cannot
// be minted. It says nothing about the record: the dispatcher pauses the whole sink with a growing backoff,
// keeps every record and notification pending, and resumes by itself once the credentials work again.
type CredentialsError struct {
	StatusCode int
	Message    string
}

func (e *CredentialsError) Error() string {
	return fmt.Sprintf("credentials refused: status %d: %s", e.StatusCode, e.Message)
}

// RetryAfterError is a rate limit: nothing should be posted to this sink before At.
type RetryAfterError struct {
	StatusCode int
	At         time.Time
	Message    string
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("rate limited: status %d until %s: %s", e.StatusCode, e.At.UTC().Format(time.RFC3339), e.Message)
}

// Class is how the dispatcher treats an error from Post.
type Class int

// The error classes.
const (
	ClassNone        Class = iota // no error
	ClassRetryable                // network error, timeout, 5xx, 408: retry with exponential backoff
	ClassRetryAfter               // 429 or rate-limited 403: pause the sink until RetryAfterError.At
	ClassNotFound                 // 404 unknown artifact: do not retry, cache negatively
	ClassPermanent                // other 4xx: do not retry
	ClassCredentials              // 401, permission 403: pause the sink with a growing backoff, keep everything
)

// Classify returns the class of err. Errors the sink did not classify are retryable.
func Classify(err error) Class {
	if err == nil {
		return ClassNone
	}
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ClassRetryAfter
	}
	var ce *CredentialsError
	if errors.As(err, &ce) {
		return ClassCredentials
	}
	var nf *NotFoundError
	if errors.As(err, &nf) {
		return ClassNotFound
	}
	var pe *PermanentError
	if errors.As(err, &pe) {
		return ClassPermanent
	}
	return ClassRetryable
}
