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
	rateLimitWait.WithLabelValues(priorityLabel(PriorityHigh))
	rateLimitWait.WithLabelValues(priorityLabel(PriorityLow))
	InitMetrics(resWebhookEndpoint, OpList, OpCreate, OpUpdate, OpDelete)
}

// initOutcomes are the outcomes whose series exist before the first request: success and the error classes the
// alerts in config/prometheus watch.
var initOutcomes = []Class{ClassNone, ClassUnavailable, ClassRateLimited, ClassAuthentication, ClassPermission}

// InitMetrics creates the zero-valued series of the request metrics for a resource's operations. A counter series
// that does not exist yet is not exported, so without this a rate() or increase() over it misses the first error;
// call it at startup with every (resource, operation) the process uses.
func InitMetrics(resource string, operations ...string) {
	for _, op := range operations {
		requestDuration.WithLabelValues(resource, op)
		for _, o := range initOutcomes {
			outcome := o.String()
			if o == ClassNone {
				outcome = outcomeSuccess
			}
			requests.WithLabelValues(resource, op, outcome)
		}
	}
}
