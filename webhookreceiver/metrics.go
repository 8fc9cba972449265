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

func init() {
	metrics.Registry.MustRegister(events, verificationFailures, requestDuration)
}
