package controllers

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/fairness"

	"github.com/prometheus/client_golang/prometheus"
	stripego "github.com/stripe/stripe-go/v76"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

var disputes = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "stripe_operator_disputes_total",
	Help: "Stripe dispute events the event worker processed, by event (created, closed) and the dispute's status " +
		"(needs_response, won, lost, ...), whether or not a Customer in the cluster matched.",
}, []string{"event", "status"})

var createsRecovered = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "stripe_operator_creates_recovered_total",
	Help: "Creates whose result was not recorded (a crash, a lost answer) and whose Stripe object was found by " +
		"listing, by kind. 0 in a run without faults.",
}, []string{labelKind})

// labelKind is the label naming a billing kind.
const labelKind = "kind"

// The state gauges, computed at scrape time from the manager's cache.
var (
	descStalled = prometheus.NewDesc("stripe_operator_objects_stalled",
		"Billing objects whose Stalled condition is True (a person must act), by kind.", []string{labelKind}, nil)
	descStalledOldest = prometheus.NewDesc("stripe_operator_objects_stalled_oldest_seconds",
		"How long the longest-stalled billing object of each kind has been Stalled, from the condition's "+
			"lastTransitionTime (0 when none is).", []string{labelKind}, nil)
	descPaymentFailed = prometheus.NewDesc("stripe_operator_subscriptions_payment_failed",
		"Subscriptions whose PaymentFailed condition is True.", nil, nil)
	descDisputed = prometheus.NewDesc("stripe_operator_customers_disputed",
		"Customers with an open dispute (Disputed condition True).", nil, nil)
	descEvents = prometheus.NewDesc("stripe_operator_stripeevents",
		"Stored StripeEvents by phase; Pending is the event worker's backlog.", []string{"phase"}, nil)
	descEventsOldest = prometheus.NewDesc("stripe_operator_stripeevents_oldest_pending_seconds",
		"Age of the oldest StripeEvent not yet processed, from its creation (0 when none is pending).", nil, nil)
)

// state is the collector of the state gauges; the leading manager points it at its cache (stateSource).
var state = &stateCollector{}

func init() {
	metrics.Registry.MustRegister(disputes, createsRecovered, state)
	metrics.Registry.MustRegister(fairness.Collectors()...)
	for _, k := range kinds {
		createsRecovered.WithLabelValues(k.kind)
	}
	// The series the alerts watch exist from the start, so that increase() sees the first dispute.
	for _, s := range []stripego.DisputeStatus{stripego.DisputeStatusNeedsResponse,
		stripego.DisputeStatusWarningNeedsResponse} {
		disputes.WithLabelValues(disputeEventLabel(eventDisputeCreated), string(s))
	}
	for _, s := range []stripego.DisputeStatus{stripego.DisputeStatusWon, stripego.DisputeStatusLost,
		stripego.DisputeStatusWarningClosed} {
		disputes.WithLabelValues(disputeEventLabel(eventDisputeClosed), string(s))
	}
}

// countDispute counts a processed dispute event; d is nil when the dispute could not be read.
func countDispute(typ string, d *stripego.Dispute) {
	status := "unknown"
	if d != nil && d.Status != "" {
		status = string(d.Status)
	}
	disputes.WithLabelValues(disputeEventLabel(typ), status).Inc()
}

// disputeEventLabel is the event label of a dispute event type: created or closed.
func disputeEventLabel(typ string) string { return strings.TrimPrefix(typ, "charge.dispute.") }

// stateCollector reports gauges of what the cluster holds: stalled objects per kind, subscriptions with a failed
// payment, disputed customers, and the StripeEvent backlog. It reads the manager's cache at scrape time and makes
// no API calls; it reports nothing while no manager leads in this process (only the leader's informers hold the
// billing objects and StripeEvents).
type stateCollector struct {
	mu     sync.Mutex
	reader cache.Cache
	now    func() time.Time
}

func (c *stateCollector) set(r cache.Cache, now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reader, c.now = r, now
}

// unset forgets r, unless another manager has taken its place since.
func (c *stateCollector) unset(r cache.Cache) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reader == r {
		c.reader = nil
	}
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStalled, descStalledOldest, descPaymentFailed, descDisputed, descEvents,
		descEventsOldest} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A kind whose objects cannot be listed is left out of the scrape.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	r, now := c.reader, c.now
	c.mu.Unlock()
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t := now()
	for _, k := range kinds {
		kind := k.kind
		items, err := cachedObjects(ctx, r, k.newObject())
		if err != nil {
			continue
		}
		stalled, oldest, paymentFailed, disputed := 0, 0.0, 0, 0
		for _, it := range items {
			o, ok := it.(billingv1.StripeObject)
			if !ok {
				continue
			}
			conds := o.GetStripeStatus().Conditions
			if s := meta.FindStatusCondition(conds, billingv1.ConditionStalled); s != nil &&
				s.Status == metav1.ConditionTrue {
				stalled++
				oldest = max(oldest, t.Sub(s.LastTransitionTime.Time).Seconds())
			}
			if meta.IsStatusConditionTrue(conds, billingv1.ConditionPaymentFailed) {
				paymentFailed++
			}
			if meta.IsStatusConditionTrue(conds, billingv1.ConditionDisputed) {
				disputed++
			}
		}
		ch <- prometheus.MustNewConstMetric(descStalled, prometheus.GaugeValue, float64(stalled), kind)
		ch <- prometheus.MustNewConstMetric(descStalledOldest, prometheus.GaugeValue, oldest, kind)
		switch kind {
		case kindSubscription:
			ch <- prometheus.MustNewConstMetric(descPaymentFailed, prometheus.GaugeValue, float64(paymentFailed))
		case kindCustomer:
			ch <- prometheus.MustNewConstMetric(descDisputed, prometheus.GaugeValue, float64(disputed))
		}
	}
	evs, err := cachedObjects(ctx, r, &billingv1.StripeEvent{})
	if err != nil {
		return
	}
	phases := map[billingv1.StripeEventPhase]int{billingv1.EventPending: 0, billingv1.EventProcessed: 0,
		billingv1.EventUnroutable: 0, billingv1.EventFailed: 0}
	oldest := 0.0
	for _, it := range evs {
		e, ok := it.(*billingv1.StripeEvent)
		if !ok {
			continue
		}
		phase := e.Status.Phase
		if phase == "" {
			phase = billingv1.EventPending
		}
		phases[phase]++
		if phase == billingv1.EventPending {
			oldest = max(oldest, t.Sub(e.CreationTimestamp.Time).Seconds())
		}
	}
	for phase, n := range phases {
		ch <- prometheus.MustNewConstMetric(descEvents, prometheus.GaugeValue, float64(n), string(phase))
	}
	ch <- prometheus.MustNewConstMetric(descEventsOldest, prometheus.GaugeValue, oldest)
}

// stateSource points the state gauges at the manager's cache while the manager leads.
type stateSource struct {
	reader cache.Cache
	now    func() time.Time
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: the leader's informers hold the objects.
func (stateSource) NeedLeaderElection() bool { return true }

// Start reports from the cache until ctx ends.
func (s stateSource) Start(ctx context.Context) error {
	state.set(s.reader, s.now)
	<-ctx.Done()
	state.unset(s.reader)
	return nil
}
