package webhookreceiver

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stripe_operator_webhook_events_total",
		Help: "Verified Stripe webhook events by type and result (stored, duplicate, ignored, error).",
	}, []string{"type", "result"})
	verificationFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stripe_operator_webhook_verification_failures_total",
		Help: "Webhook deliveries refused before storing, by reason (missing_header, malformed_header, too_old, " +
			"in_future, bad_signature, invalid_payload, too_large, no_secret).",
	}, []string{"reason"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "stripe_operator_webhook_request_duration_seconds",
		Help:    "Time to verify, store and acknowledge a webhook delivery, by status code.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"code"})
)

// Values of the verification failures' reason label.
const (
	reasonMissingHeader   = "missing_header"
	reasonMalformedHeader = "malformed_header"
	reasonTooOld          = "too_old"
	reasonInFuture        = "in_future"
	reasonBadSignature    = "bad_signature"
	reasonInvalidPayload  = "invalid_payload"
	reasonTooLarge        = "too_large"
	reasonNoSecret        = "no_secret"
)

var failureReasons = []string{reasonMissingHeader, reasonMalformedHeader, reasonTooOld, reasonInFuture,
	reasonBadSignature, reasonInvalidPayload, reasonTooLarge, reasonNoSecret}

func init() {
	metrics.Registry.MustRegister(events, verificationFailures, requestDuration)
	// Counter series that were never incremented are not exported, and rate() or increase() would miss the first
	// increment: create the series the alerts watch at zero.
	for _, r := range failureReasons {
		verificationFailures.WithLabelValues(r)
	}
	for _, t := range storedTypes() {
		events.WithLabelValues(t, resultStored)
	}
}
