// Package metrics defines the tracker's Prometheus collectors. They are registered explicitly on the registry
// the caller passes (controller-runtime's, in the binary), never in init().
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Label values of deptracker_events_processed_*.
const (
	EventPodRunning = "pod_running"
	EventPodGone    = "pod_gone"
	EventAdmission  = "admission"
	// EventOwnerChanged is an owner's metadata.github.com/ annotations changing.
	EventOwnerChanged = "owner_changed"
)

// Outcomes of deptracker_admission_requests_total.
const (
	AdmissionObserved    = "observed"
	AdmissionDropped     = "dropped"
	AdmissionUndecodable = "undecodable"
	AdmissionDryRun      = "dry_run"
	AdmissionIgnored     = "ignored"
	AdmissionMalformed   = "malformed"
	// AdmissionStandby is a review answered by a replica that does not lead: its tracker does not run, so the
	// review is not observed (the leader's informer records the pod).
	AdmissionStandby = "standby"
)

// Outcomes of deptracker_rollout_notifications_total.
const (
	NotificationDelivered   = "delivered"
	NotificationRetried     = "retried"
	NotificationRateLimited = "rate_limited"
	NotificationRejected    = "rejected"
	// NotificationCredentialsRefused is a sink refusing the credentials (sink.CredentialsError): the
	// notification stays pending while the whole sink pauses.
	NotificationCredentialsRefused = "credentials_refused"
)

// Metrics are the tracker's collectors. The deptracker_* names without unit suffix keep the names of the
// reference implementation for dashboard compatibility; new metrics carry units.
type Metrics struct {
	EventsProcessedOK     *prometheus.CounterVec   // event_type
	EventsProcessedFailed *prometheus.CounterVec   // event_type
	EventsProcessedTimer  *prometheus.HistogramVec // status
	PostTimer             prometheus.Histogram
	PostOK                prometheus.Counter
	PostSoftFail          prometheus.Counter
	PostHardFail          prometheus.Counter
	PostClientError       prometheus.Counter
	PostNoAttestation     prometheus.Counter
	PostRateLimited       prometheus.Counter
	UnknownArtifactHit    prometheus.Counter
	Admission             *prometheus.CounterVec // operation, outcome
	QueueDepth            prometheus.Gauge
	PendingRecords        prometheus.Gauge
	DigestMismatch        prometheus.Counter
	ContainersSkipped     *prometheus.CounterVec // reason
	PodsFirstSeen         *prometheus.CounterVec // source
	RecordLatency         prometheus.Histogram
	OwnerAccessDenied     *prometheus.CounterVec // kind
	KeyCollisions         prometheus.Counter
	OlderRefused          prometheus.Counter
	// LedgerWritesPending, LedgerWriteSeconds and LedgerWriteFailures describe the tracker's ledger writes, which
	// run outside its lock, one at a time per record key.
	LedgerWritesPending  prometheus.Gauge
	LedgerWriteSeconds   prometheus.Histogram
	LedgerWriteFailures  prometheus.Counter
	RolloutNotifications *prometheus.CounterVec // sink, outcome
	RolloutPending       prometheus.Gauge
	SlackErrors          *prometheus.CounterVec // error: a Slack error code from a fixed list, else "other"
	// PostCredentialsRefused counts record posts the sink answered with refused credentials (401, permission
	// 403, a token that cannot be minted); the record stays pending.
	PostCredentialsRefused prometheus.Counter
	// SinkCredentialsRefused is 1 while a sink refuses the tracker's credentials (posting to it is paused,
	// nothing is dropped), else 0; by sink name: the records' sink ("github") and the rollout sinks ("slack").
	SinkCredentialsRefused *prometheus.GaugeVec // sink
	// SinkMisconfigured is 1 while what a sink posts to does not exist (a wrong ORG or BASE_URL).
	SinkMisconfigured *prometheus.GaugeVec // sink
	// DispatchKeys is the number of record keys the dispatcher remembers a delivered record of: the keys whose
	// deployed record the sink holds. A delivered decommission is forgotten, so that churn (unique names) does
	// not grow it.
	DispatchKeys prometheus.Gauge
	// Ledger are the metrics of the ledger's retention (ledger.go).
	Ledger *Ledger
	// Delivery are the delivery metrics of the delivery sink (delivery.go).
	Delivery *Delivery
	// Flux are the metrics of the revisions Flux applies (flux.go).
	Flux *Flux
}

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		EventsProcessedOK: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deptracker_events_processed_ok", Help: "The total number of successfully processed pod events.",
		}, []string{"event_type"}),
		EventsProcessedFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deptracker_events_processed_failed", Help: "The total number of pod events whose processing failed (retried).",
		}, []string{"event_type"}),
		EventsProcessedTimer: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "deptracker_events_processed_timer", Help: "The duration (seconds) of processing a pod event.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10),
		}, []string{"status"}),
		PostTimer: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "deptracker_post_deployment_record_timer", Help: "The duration (seconds) of posting a record to the GitHub API.",
		}),
		PostOK: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deptracker_post_record_ok", Help: "The total number of records accepted by the sink.",
		}),
		PostSoftFail: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deptracker_post_record_soft_fail", Help: "The total number of recoverable post failures (network, 5xx, rate limits, refused credentials); the record is retried.",
		}),
		PostHardFail: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deptracker_post_record_hard_fail", Help: "The total number of records given up on (not retried).",
		}),
		PostClientError: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deptracker_post_record_client_error", Help: "The total number of non-retryable 4xx answers (404 unknown artifact included).",
		}),
		PostNoAttestation: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deptracker_post_record_no_attestation", Help: "The total number of 404 answers for an artifact digest GitHub does not know.",
		}),
		PostRateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deptracker_post_record_rate_limited", Help: "The total number of posts answered with a rate limit (429 or rate-limited 403).",
		}),
		UnknownArtifactHit: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deptracker_post_record_unknown_artifact_cache_hit", Help: "The total number of posts avoided because the digest recently got a 404.",
		}),
		Admission: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deptracker_admission_requests_total", Help: "Admission reviews answered, by operation and outcome (observed, dropped, undecodable, dry_run, ignored, malformed, standby). Every one is allowed.",
		}, []string{"operation", "outcome"}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deptracker_queue_depth", Help: "Record keys waiting in the delivery queue.",
		}),
		PendingRecords: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deptracker_pending_records", Help: "Records decided but not yet accepted by the sink.",
		}),
		DigestMismatch: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deptracker_digest_mismatch_total", Help: "Containers whose running imageID differs from the digest they were submitted with (the submitted digest is recorded).",
		}),
		ContainersSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deptracker_containers_skipped_total", Help: "Running containers that produce no record, by reason.",
		}, []string{"reason"}),
		PodsFirstSeen: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deptracker_pods_first_seen_total", Help: "Pods by the source that saw them first: webhook or informer (informer-first means the webhook was skipped or slower).",
		}, []string{"source"}),
		RecordLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "deptracker_record_latency_seconds", Help: "Time from a pod being confirmed running (or gone) to its record being accepted.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		OwnerAccessDenied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deptracker_owner_access_denied_total",
			Help: "Owners the tracker could not read (access refused or kind not served), by kind; records are kept under the owner its child names.",
		}, []string{"kind"}),
		KeyCollisions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deptracker_record_key_collisions_total",
			Help: "Times a live workload took a record key (deployment name) that another live workload holds.",
		}),
		OlderRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "deptracker_older_decisions_refused_total",
			Help: "Decisions not recorded because the ledger holds one of a newer revision (a leader with a lagging cache).",
		}),
		RolloutNotifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deptracker_rollout_notifications_total",
			Help: "Rollout notifications handed to a sink, by sink and outcome (delivered, retried, rate_limited, rejected, credentials_refused).",
		}, []string{"sink", "outcome"}),
		RolloutPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "deptracker_rollout_notifications_pending",
			Help: "Rollout notifications decided but not yet acknowledged, one per sink and rollout.",
		}),
	}
	m.SlackErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "deptracker_slack_errors_total", Help: "The total number of Slack API calls that failed, by Slack error code (a fixed list, else other).",
	}, []string{"error"})
	reg.MustRegister(m.SlackErrors)
	m.PostCredentialsRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "deptracker_post_record_credentials_refused_total",
		Help: "The total number of posts the sink answered with refused credentials (401, permission 403, token minting refused); the record stays pending.",
	})
	m.SinkCredentialsRefused = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "deptracker_sink_credentials_refused",
		Help: "1 while the sink refuses the tracker's credentials (posting to it is paused with backoff, nothing is dropped), else 0.",
	}, []string{"sink"})
	m.SinkMisconfigured = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "deptracker_sink_misconfigured",
		Help: "1 while what the sink posts to does not exist (GitHub: ORG not found at BASE_URL, or BASE_URL is not the REST API); posting to it is paused and its target checked again with backoff, nothing is dropped; else 0.",
	}, []string{"sink"})
	reg.MustRegister(m.PostCredentialsRefused, m.SinkCredentialsRefused, m.SinkMisconfigured)
	m.DispatchKeys = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "deptracker_dispatch_keys",
		Help: "Record keys the dispatcher keeps a delivered record of in memory: those whose deployed record the sink holds (a delivered decommission is forgotten).",
	})
	reg.MustRegister(m.DispatchKeys)
	m.Ledger = newLedger(reg)
	m.LedgerWritesPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "deptracker_ledger_writes_pending",
		Help: "Record keys whose latest decision is not written to the ledger yet (and so not handed to the sinks yet).",
	})
	m.LedgerWriteSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "deptracker_ledger_write_seconds",
		Help:    "Time from a decision to its ledger write's success, retries included.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	})
	m.LedgerWriteFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "deptracker_ledger_write_failures_total",
		Help: "Ledger writes that failed and are retried with backoff (the decision is kept until written).",
	})
	reg.MustRegister(m.LedgerWritesPending, m.LedgerWriteSeconds, m.LedgerWriteFailures)
	m.Delivery = newDelivery(reg)
	m.Flux = newFlux(reg)
	reg.MustRegister(m.EventsProcessedOK, m.EventsProcessedFailed, m.EventsProcessedTimer, m.PostTimer, m.PostOK,
		m.PostSoftFail, m.PostHardFail, m.PostClientError, m.PostNoAttestation, m.PostRateLimited,
		m.UnknownArtifactHit, m.Admission, m.QueueDepth, m.PendingRecords, m.DigestMismatch, m.ContainersSkipped,
		m.PodsFirstSeen, m.RecordLatency, m.OwnerAccessDenied, m.KeyCollisions, m.OlderRefused,
		m.RolloutNotifications, m.RolloutPending)
	return m
}
