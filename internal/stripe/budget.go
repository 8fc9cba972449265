package stripe

import (
	"container/heap"
	"context"
	"math"
	"sync"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/fairness"
)

// Priority orders waiters on a budget: user-driven changes go ahead of periodic resyncs.
type Priority int

const (
	// PriorityHigh is work a person asked for: a new or changed object, a deletion, a webhook-driven fix.
	PriorityHigh Priority = iota
	// PriorityLow is background work: periodic resyncs.
	PriorityLow
)

// Budget is a token bucket shared by every call to one Stripe account. Waiters are served by priority (user-driven
// changes before periodic resyncs), and within a priority tenants (namespaces, from the context: see
// fairness.WithTenant) take turns by start-time fair queuing with their weights, so one namespace's bulk import
// cannot hold another's requests behind it. A 429 from Stripe halves the rate and pauses the bucket for a moment (the
// whole account slows, not just the caller that saw it); successes restore the rate gradually.
type Budget struct {
	mu          sync.Mutex
	limit       float64 // configured tokens per second
	rate        float64 // current tokens per second (lower than limit after 429s)
	burst       float64
	tokens      float64
	last        time.Time
	pausedUntil time.Time
	now         func() time.Time

	weights    fairness.Weights
	taggers    [2]*fairness.Tagger // one line per priority
	waiters    waiterHeap
	seq        uint64
	dispatches bool // a dispatcher goroutine is serving the waiters
}

// NewBudget returns a full bucket of perSecond tokens a second. The burst is one token short of one second's worth
// (at least 1): the account's own bucket holds a second's worth, so it keeps a token in hand for requests that reach
// Stripe closer together than they left (they travel concurrently), and the budget's pace does not meet a 429.
func NewBudget(perSecond float64) *Budget { return NewFairBudget(perSecond, nil) }

// NewFairBudget is NewBudget with tenants' weights (nil: every tenant weighs 1).
func NewFairBudget(perSecond float64, weights fairness.Weights) *Budget {
	b := &Budget{limit: perSecond, rate: perSecond, burst: math.Max(1, perSecond-1), now: time.Now, weights: weights}
	b.tokens, b.last = b.burst, b.now()
	b.taggers = [2]*fairness.Tagger{fairness.NewTagger(weights), fairness.NewTagger(weights)}
	return b
}

func (b *Budget) refill(now time.Time) {
	if now.After(b.last) {
		b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
}

// waiter is a caller waiting for a token.
type waiter struct {
	prio    Priority
	tag     float64
	seq     uint64
	tenant  string
	index   int // in the heap; -1 once removed
	granted chan struct{}
}

// waiterHeap orders waiters by priority, then start tag, then arrival.
type waiterHeap []*waiter

func (h waiterHeap) Len() int { return len(h) }
func (h waiterHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.prio != b.prio {
		return a.prio < b.prio // PriorityHigh is 0
	}
	if a.tag != b.tag {
		return a.tag < b.tag
	}
	return a.seq < b.seq
}
func (h waiterHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *waiterHeap) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *waiterHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.index = -1
	return w
}

// Wait blocks until a token is available for the priority and the context's tenant, or ctx ends. It returns how
// long it waited.
func (b *Budget) Wait(ctx context.Context, p Priority) (time.Duration, error) {
	start := time.Now()
	b.mu.Lock()
	now := b.now()
	b.refill(now)
	if len(b.waiters) == 0 && !now.Before(b.pausedUntil) && b.tokens >= 1 {
		b.tokens--
		b.mu.Unlock()
		return 0, nil
	}
	tenant := fairness.TenantFrom(ctx)
	w := &waiter{prio: p, tag: b.taggers[p].Tag(tenant), seq: b.seq, tenant: tenant, granted: make(chan struct{})}
	b.seq++
	heap.Push(&b.waiters, w)
	if !b.dispatches {
		b.dispatches = true
		go b.dispatch()
	}
	b.mu.Unlock()
	select {
	case <-w.granted:
		return time.Since(start), nil
	case <-ctx.Done():
		b.mu.Lock()
		defer b.mu.Unlock()
		if w.index < 0 {
			return time.Since(start), nil // granted meanwhile: the token is spent on this call
		}
		heap.Remove(&b.waiters, w.index)
		return time.Since(start), ctx.Err()
	}
}

// dispatch hands tokens to the waiters in order, as the bucket refills, until none is left.
func (b *Budget) dispatch() {
	for {
		b.mu.Lock()
		if len(b.waiters) == 0 {
			b.dispatches = false
			b.mu.Unlock()
			return
		}
		now := b.now()
		b.refill(now)
		var wait time.Duration
		switch {
		case now.Before(b.pausedUntil):
			wait = b.pausedUntil.Sub(now)
		case b.tokens >= 1:
			b.tokens--
			w := heap.Pop(&b.waiters).(*waiter)
			b.taggers[w.prio].Served(w.tag)
			close(w.granted)
			b.mu.Unlock()
			continue
		default:
			wait = time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		}
		b.mu.Unlock()
		time.Sleep(max(wait, time.Millisecond))
	}
}

// Throttled records a 429: the rate halves (down to a tenth of the limit) and the bucket pauses for a second.
func (b *Budget) Throttled() {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.refill(now)
	b.rate = math.Max(b.limit/10, b.rate/2)
	b.tokens = 0
	if pause := now.Add(time.Second); pause.After(b.pausedUntil) {
		b.pausedUntil = pause
	}
}

// Succeeded records a successful call: the rate recovers by 2% of the limit, up to the limit.
func (b *Budget) Succeeded() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate < b.limit {
		b.refill(b.now())
		b.rate = math.Min(b.limit, b.rate+b.limit*0.02)
	}
}

// Rate returns the current rate in tokens per second.
func (b *Budget) Rate() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rate
}
