package fairness

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Queue is a controller's priority queue with tenants taking turns within each priority: controller-runtime's
// priority queue orders items by priority, then first come first served; Queue folds a start tag of fair queuing
// into the priority it passes on, so that among items of one priority the tenant with the least work waiting goes
// first. Priorities between controller-runtime's and the queue's are translated both ways: callers see only their
// own (GetWithPriority returns the priority the item was added with).
type Queue struct {
	priorityqueue.PriorityQueue[reconcile.Request]
	name    string
	weights Weights
	labels  *Labels

	mu      sync.Mutex
	taggers map[int]*Tagger // one line per priority
	queued  map[reconcile.Request]queuedAt
	// peak is the most items queued since queued was last made: a Go map keeps its size when emptied, so the map
	// of a bulk load is made anew once the load is served.
	peak int
}

type queuedAt struct {
	label string
	at    time.Time
}

// bandSize separates priorities in the folded priority: a priority p occupies (p*bandSize - bandSize, p*bandSize].
// Start tags count in thousandths (weights up to 100), so a line holds 10^12 items before it wraps.
const (
	bandSize  = 1_000_000_000_000_000
	tagScale  = 1000
	tagWrapAt = bandSize / tagScale
)

// NewQueue wraps a controller-runtime priority queue.
func NewQueue(name string, inner priorityqueue.PriorityQueue[reconcile.Request], weights Weights,
	labels *Labels) *Queue {
	return &Queue{PriorityQueue: inner, name: name, weights: weights, labels: labels,
		taggers: map[int]*Tagger{}, queued: map[reconcile.Request]queuedAt{}}
}

// fold returns the priority passed on for an item of the tenant added with priority p.
func (q *Queue) fold(p int, tenant string) int {
	q.mu.Lock()
	t, ok := q.taggers[p]
	if !ok {
		t = NewTagger(q.weights)
		q.taggers[p] = t
	}
	q.mu.Unlock()
	tag := int64(t.Tag(tenant)*tagScale) % tagWrapAt
	return p*bandSize - int(tag)
}

// unfold returns the priority an item was added with, and its start tag.
func unfold(folded int) (int, float64) {
	p := -floorDiv(-folded, bandSize)
	return p, float64(p*bandSize-folded) / tagScale
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// AddWithOpts implements priorityqueue.PriorityQueue.
func (q *Queue) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	p := 0
	if o.Priority != nil {
		p = *o.Priority
	}
	now := time.Now()
	for _, it := range items {
		folded := q.fold(p, it.Namespace)
		opts := o
		opts.Priority = &folded
		if o.After <= 0 && !o.RateLimited {
			q.track(it, now)
		}
		q.PriorityQueue.AddWithOpts(opts, it)
	}
}

// Add implements workqueue.TypedInterface.
func (q *Queue) Add(item reconcile.Request) { q.AddWithOpts(priorityqueue.AddOpts{}, item) }

// AddAfter implements workqueue.TypedDelayingInterface.
func (q *Queue) AddAfter(item reconcile.Request, d time.Duration) {
	q.AddWithOpts(priorityqueue.AddOpts{After: d}, item)
}

// AddRateLimited implements workqueue.TypedRateLimitingInterface.
func (q *Queue) AddRateLimited(item reconcile.Request) {
	q.AddWithOpts(priorityqueue.AddOpts{RateLimited: true}, item)
}

// GetWithPriority implements priorityqueue.PriorityQueue.
func (q *Queue) GetWithPriority() (reconcile.Request, int, bool) {
	it, folded, shutdown := q.PriorityQueue.GetWithPriority()
	if shutdown {
		return it, folded, shutdown
	}
	p, tag := unfold(folded)
	q.mu.Lock()
	t := q.taggers[p]
	q.mu.Unlock()
	if t != nil {
		t.Served(tag)
	}
	q.served(it)
	return it, p, false
}

// Get implements workqueue.TypedInterface.
func (q *Queue) Get() (reconcile.Request, bool) {
	it, _, shutdown := q.GetWithPriority()
	return it, shutdown
}

// track counts an item waiting to be worked on now (delayed and backed-off items are not waiting yet).
func (q *Queue) track(it reconcile.Request, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.queued[it]; ok {
		return
	}
	label := q.labels.Of(it.Namespace)
	q.queued[it] = queuedAt{label: label, at: now}
	q.peak = max(q.peak, len(q.queued))
	queueDepth.WithLabelValues(q.name, label).Inc()
}

func (q *Queue) served(it reconcile.Request) {
	q.mu.Lock()
	w, ok := q.queued[it]
	delete(q.queued, it)
	if len(q.queued) == 0 && q.peak > shrinkAbove {
		q.queued, q.peak = map[reconcile.Request]queuedAt{}, 0
	}
	q.mu.Unlock()
	if !ok {
		return
	}
	queueDepth.WithLabelValues(q.name, w.label).Dec()
	queueWait.WithLabelValues(q.name, w.label).Observe(time.Since(w.at).Seconds())
}

// shrinkAbove is the size past which an emptied map of queued items is made anew.
const shrinkAbove = 256

var (
	queueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "stripe_operator_queue_depth",
		Help: "Objects waiting in a controller's work queue to be worked on now, by namespace (the first 20 " +
			"namespaces seen by name, the others as \"other\").",
	}, []string{"controller", "namespace"})
	queueWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "stripe_operator_queue_wait_seconds",
		Help:    "How long an object waited in a controller's work queue, by namespace (bounded as for the depth).",
		Buckets: []float64{0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
	}, []string{"controller", "namespace"})
)

// Collectors are the queue metrics, for registration.
func Collectors() []prometheus.Collector { return []prometheus.Collector{queueDepth, queueWait} }
