package stripe

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stripe_operator_stripe_requests_total",
		Help: "Stripe API requests by resource, operation and outcome (success, or the error class).",
	}, []string{"resource", "operation", "outcome"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "stripe_operator_stripe_request_duration_seconds",
		Help:    "Latency of Stripe API requests.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"resource", "operation"})
	rateLimitWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "stripe_operator_stripe_ratelimit_wait_seconds",
		Help:    "Time spent waiting for the per-account rate budget before a Stripe request.",
		Buckets: []float64{.001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"priority"})
)

func init() {
	metrics.Registry.MustRegister(requests, requestDuration, rateLimitWait)
}
