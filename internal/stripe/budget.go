package stripe

import (
	"context"
	"math"
	"sync"
	"time"
)

// Priority orders waiters on a budget: user-driven changes go ahead of periodic resyncs.
type Priority int

const (
	// PriorityHigh is work a person asked for: a new or changed object, a deletion, a webhook-driven fix.
	PriorityHigh Priority = iota
	// PriorityLow is background work: periodic resyncs.
	PriorityLow
)

// Budget is a token bucket shared by every call to one Stripe account. High-priority callers are served before
// low-priority ones. A 429 from Stripe halves the rate and pauses the bucket for a moment (the whole account slows,
// not just the caller that saw it); successes restore the rate gradually.
type Budget struct {
	mu          sync.Mutex
	limit       float64 // configured tokens per second
	rate        float64 // current tokens per second (lower than limit after 429s)
	burst       float64
	tokens      float64
	last        time.Time
	pausedUntil time.Time
	highWaiting int
	now         func() time.Time
}

// NewBudget returns a full bucket of perSecond tokens a second. The burst is one second's worth, at least 1.
func NewBudget(perSecond float64) *Budget {
	b := &Budget{limit: perSecond, rate: perSecond, burst: math.Max(1, perSecond), now: time.Now}
	b.tokens, b.last = b.burst, b.now()
	return b
}

func (b *Budget) refill(now time.Time) {
	if now.After(b.last) {
		b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
}

// Wait blocks until a token is available for the priority, or ctx ends. It returns how long it waited.
func (b *Budget) Wait(ctx context.Context, p Priority) (time.Duration, error) {
	start := time.Now()
	registered := false
	defer func() {
		if registered {
			b.mu.Lock()
			b.highWaiting--
			b.mu.Unlock()
		}
	}()
	for {
		b.mu.Lock()
		now := b.now()
		b.refill(now)
		var wait time.Duration
		switch {
		case now.Before(b.pausedUntil):
			wait = b.pausedUntil.Sub(now)
		case p == PriorityLow && b.highWaiting > 0:
			wait = 5 * time.Millisecond
		case b.tokens >= 1:
			b.tokens--
			b.mu.Unlock()
			return time.Since(start), nil
		default:
			wait = time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		}
		if p == PriorityHigh && !registered {
			b.highWaiting++
			registered = true
		}
		b.mu.Unlock()
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return time.Since(start), ctx.Err()
		case <-t.C:
		}
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
