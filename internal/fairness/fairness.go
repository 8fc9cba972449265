// Package fairness shares the operator's two waiting lines between tenants (namespaces): the work queue of each
// controller and the Stripe rate budget of each account. Both serve, among waiters of the same priority, the one with
// the smallest start tag of start-time fair queuing: a tenant's n-th waiting item is tagged n/weight past the line's
// virtual time, so a tenant with 2,000 queued items does not put a newcomer of another tenant behind them, and a
// tenant of weight 2 is served twice as often as one of weight 1 while both wait.
package fairness

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Weights are the shares of tenants: a tenant not named has weight 1.
type Weights map[string]float64

// Of returns the weight of a tenant.
func (w Weights) Of(tenant string) float64 {
	if v, ok := w[tenant]; ok && v > 0 {
		return v
	}
	return 1
}

// ParseWeights reads "team-a=3,team-b=0.5" (the --namespace-weights flag).
func ParseWeights(s string) (Weights, error) {
	w := Weights{}
	if strings.TrimSpace(s) == "" {
		return w, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("namespace weight %q: want name=weight", part)
		}
		f, err := strconv.ParseFloat(value, 64)
		if err != nil || f <= 0 || f > 100 {
			return nil, fmt.Errorf("namespace weight %q: the weight must be a number above 0 and at most 100", part)
		}
		w[name] = f
	}
	return w, nil
}

// Tagger hands out start tags of start-time fair queuing for one waiting line. It is safe for concurrent use.
type Tagger struct {
	mu      sync.Mutex
	weights Weights
	virtual float64            // the start tag of the item served last
	last    map[string]float64 // each tenant's next start tag
}

// NewTagger returns a tagger with the weights (nil: every tenant weighs 1).
func NewTagger(weights Weights) *Tagger {
	return &Tagger{weights: weights, last: map[string]float64{}}
}

// Tag returns the start tag of a new waiter of the tenant: its tenant's previous waiter's finish, or the line's
// virtual time when the tenant has nothing waiting ahead of it.
func (t *Tagger) Tag(tenant string) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	start := max(t.virtual, t.last[tenant])
	t.last[tenant] = start + 1/t.weights.Of(tenant)
	return start
}

// Served advances the line's virtual time to the start tag of a waiter being served.
func (t *Tagger) Served(tag float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tag <= t.virtual {
		return
	}
	t.virtual = tag
	if len(t.last) > 1024 {
		// Tenants whose waiters have all been served start again from the virtual time anyway.
		for k, v := range t.last {
			if v <= t.virtual {
				delete(t.last, k)
			}
		}
	}
}

// Labels bounds the cardinality of a tenant label: the first max tenants seen keep their name, the others are
// "other".
type Labels struct {
	mu    sync.Mutex
	max   int
	known map[string]bool
}

// Other is the label of the tenants beyond the bound.
const Other = "other"

// NewLabels returns a bound of max named tenants.
func NewLabels(maxNamed int) *Labels { return &Labels{max: maxNamed, known: map[string]bool{}} }

// Of returns the label value for a tenant.
func (l *Labels) Of(tenant string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.known[tenant] {
		return tenant
	}
	if len(l.known) < l.max {
		l.known[tenant] = true
		return tenant
	}
	return Other
}

type tenantKey struct{}

// WithTenant returns a context whose Stripe calls are charged to the tenant (a namespace).
func WithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// TenantFrom returns the tenant a context's work is charged to, or "".
func TenantFrom(ctx context.Context) string {
	s, _ := ctx.Value(tenantKey{}).(string)
	return s
}
