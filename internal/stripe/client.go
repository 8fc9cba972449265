// Package stripe is the only package of the operator that imports stripe-go. It builds one client per credential
// (never stripe-go's process-wide globals), sends a deterministic idempotency key with every write, classifies
// Stripe's errors, shares a rate budget per Stripe account, exports Prometheus metrics, and logs the request ID and
// idempotency key of every write. It never logs an API key.
package stripe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/fairness"

	"github.com/go-logr/logr"
	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// Default rates, from Stripe's published limits.
const (
	DefaultTestRate   = 25
	DefaultLiveRate   = 100
	DefaultSearchRate = 20
	// DefaultTimeout bounds one HTTP request to Stripe.
	DefaultTimeout = 30 * time.Second
)

// Config configures the clients a Factory builds.
type Config struct {
	// APIBase overrides Stripe's API URL (for the simulator); empty means https://api.stripe.com.
	APIBase string
	// TestRate, LiveRate and SearchRate are the budgets per account in requests per second (defaults 25, 100, 20).
	TestRate, LiveRate, SearchRate float64
	// Timeout bounds one HTTP request (default 30 s).
	Timeout time.Duration
	// Logger receives stripe-go's own messages (at V(1) and below) and the operator's request logs.
	Logger logr.Logger
	// NamespaceWeights are the namespaces' shares of an account's budget while several wait (default 1 each).
	NamespaceWeights fairness.Weights
}

// Key is a parsed API key. Its String never shows the secret.
type Key struct {
	secret     string
	Live       bool
	Restricted bool
}

// ParseKey checks the shape of a secret (sk_) or restricted (rk_) key.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	var k Key
	switch {
	case strings.HasPrefix(s, "sk_test_"):
	case strings.HasPrefix(s, "sk_live_"):
		k.Live = true
	case strings.HasPrefix(s, "rk_test_"):
		k.Restricted = true
	case strings.HasPrefix(s, "rk_live_"):
		k.Live, k.Restricted = true, true
	default:
		return Key{}, errors.New("the API key must be a secret key (sk_test_, sk_live_) or a restricted key " +
			"(rk_test_, rk_live_); publishable keys cannot be used")
	}
	if len(s) < 12 {
		return Key{}, errors.New("the API key is too short")
	}
	k.secret = s
	return k, nil
}

// String shows the key's prefix and last four characters, as Stripe does.
func (k Key) String() string {
	if len(k.secret) < 12 {
		return "****"
	}
	return k.secret[:8] + "…" + k.secret[len(k.secret)-4:]
}

// Fingerprint identifies the key without revealing it (a SHA-256 prefix).
func (k Key) Fingerprint() string {
	sum := sha256.Sum256([]byte(k.secret))
	return hex.EncodeToString(sum[:8])
}

// Factory builds and caches one Client per key, and one Budget per Stripe account.
type Factory struct {
	cfg     Config
	mu      sync.Mutex
	clients map[string]*Client
	budgets map[string]*Budget
}

// NewFactory returns a Factory with defaults filled in.
func NewFactory(cfg Config) *Factory {
	if cfg.TestRate == 0 {
		cfg.TestRate = DefaultTestRate
	}
	if cfg.LiveRate == 0 {
		cfg.LiveRate = DefaultLiveRate
	}
	if cfg.SearchRate == 0 {
		cfg.SearchRate = DefaultSearchRate
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Factory{cfg: cfg, clients: map[string]*Client{}, budgets: map[string]*Budget{}}
}

// Client returns the client for key. account names the Stripe account the key belongs to, so that several keys of
// one account share one budget; when empty, the key is its own account.
func (f *Factory) Client(key Key, account string) *Client {
	f.mu.Lock()
	defer f.mu.Unlock()
	if account == "" {
		account = "key:" + key.Fingerprint()
	}
	mode := "test"
	if key.Live {
		mode = "live"
	}
	id := key.Fingerprint() + "/" + account
	if c, ok := f.clients[id]; ok {
		return c
	}
	budget := func(name string, rate float64) *Budget {
		b, ok := f.budgets[name]
		if !ok {
			b = NewFairBudget(rate, f.cfg.NamespaceWeights)
			f.budgets[name] = b
		}
		return b
	}
	rate := f.cfg.TestRate
	if key.Live {
		rate = f.cfg.LiveRate
	}
	cfg := &stripego.BackendConfig{
		HTTPClient:        &http.Client{Timeout: f.cfg.Timeout},
		MaxNetworkRetries: stripego.Int64(0), // the reconcile loop owns retries and the rate budget
		EnableTelemetry:   stripego.Bool(false),
		LeveledLogger:     logrShim{f.cfg.Logger.WithName("stripe-go")},
	}
	if f.cfg.APIBase != "" {
		cfg.URL = stripego.String(f.cfg.APIBase)
	}
	c := &Client{
		API:    client.New(key.secret, stripego.NewBackendsWithConfig(cfg)),
		Key:    key,
		budget: budget(account+"/"+mode, rate),
		search: budget(account+"/"+mode+"/search", f.cfg.SearchRate),
		log:    f.cfg.Logger,
	}
	f.clients[id] = c
	return c
}

// Client calls Stripe with one credential. Use it through Call.
type Client struct {
	// API is stripe-go's client for this key. Call it only inside Call, which sets the context and the
	// idempotency key and takes a token from the budget.
	API    *client.API
	Key    Key
	budget *Budget
	search *Budget
	log    logr.Logger
}

// Op describes one Stripe call for the budget, metrics and logs.
type Op struct {
	// Resource is the Stripe resource, for example customer.
	Resource string
	// Operation is create, retrieve, update, delete, list or search.
	Operation string
	// IdempotencyKey is required for every write (create, update, delete): derive it from the object's UID.
	IdempotencyKey string
	// Priority orders the call on the budget.
	Priority Priority
}

// Operations.
const (
	OpCreate   = "create"
	OpRetrieve = "retrieve"
	OpUpdate   = "update"
	OpDelete   = "delete"
	OpCancel   = "cancel"
	OpList     = "list"
	OpSearch   = "search"
)

func (o Op) write() bool {
	switch o.Operation {
	case OpRetrieve, OpList, OpSearch:
		return false
	}
	return true
}

// outcomeSuccess is the outcome label of a request that succeeded; failures carry their error class.
const outcomeSuccess = "success"

// Params is what Call sets the context (and, for writes, the idempotency key) on: a request's *stripego.Params, or
// a list request's *stripego.ListParams.
type Params interface {
	*stripego.Params | *stripego.ListParams
}

// Call runs fn, one Stripe request made with c.API: it waits for the budget, sets params' context and (for writes)
// idempotency key, records metrics, logs writes with their request ID, feeds 429s back to the budget, and returns
// a classified *Error on failure.
func Call[T any, P Params](ctx context.Context, c *Client, op Op, params P, fn func() (T, error)) (T, error) {
	var zero T
	if op.write() && op.IdempotencyKey == "" {
		return zero, fmt.Errorf("stripe %s %s: a write needs an idempotency key", op.Resource, op.Operation)
	}
	b := c.budget
	if op.Operation == OpSearch {
		b = c.search
	}
	waited, err := b.Wait(ctx, op.Priority)
	rateLimitWait.WithLabelValues(priorityLabel(op.Priority)).Observe(waited.Seconds())
	if err != nil {
		return zero, &Error{Class: ClassUnavailable, Message: "waiting for the rate budget: " + err.Error(), Err: err}
	}
	switch p := any(params).(type) {
	case *stripego.Params:
		p.Context = ctx
		if op.write() {
			p.SetIdempotencyKey(op.IdempotencyKey)
		}
	case *stripego.ListParams:
		p.Context = ctx
	}
	start := time.Now()
	res, err := fn()
	requestDuration.WithLabelValues(op.Resource, op.Operation).Observe(time.Since(start).Seconds())
	log := c.log.WithValues("resource", op.Resource, "operation", op.Operation, "key", c.Key.String())
	if op.write() {
		log = log.WithValues("idempotencyKey", op.IdempotencyKey)
	}
	if err != nil {
		ce := Classify(err)
		if op.write() {
			ce.IdempotencyKey = op.IdempotencyKey
		}
		requests.WithLabelValues(op.Resource, op.Operation, ce.Class.String()).Inc()
		if ce.Class == ClassRateLimited {
			b.Throttled()
		}
		log.V(1).Info("Stripe call failed", "requestID", ce.RequestID, "class", ce.Class.String(),
			"status", ce.HTTPStatus, "code", ce.Code)
		return zero, ce
	}
	b.Succeeded()
	requests.WithLabelValues(op.Resource, op.Operation, outcomeSuccess).Inc()
	if op.write() {
		log.Info("Stripe write", "requestID", requestIDOf(res))
	}
	return res, nil
}

// requestIDOf reads LastResponse.RequestID of a stripe-go resource.
func requestIDOf(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return ""
	}
	f := rv.Elem().FieldByName("LastResponse")
	if !f.IsValid() || f.IsNil() {
		return ""
	}
	if r, ok := f.Interface().(*stripego.APIResponse); ok && r != nil {
		return r.RequestID
	}
	return ""
}

func priorityLabel(p Priority) string {
	if p == PriorityHigh {
		return "high"
	}
	return "low"
}

// logrShim sends stripe-go's messages to logr at debug verbosity; the operator logs what matters itself.
type logrShim struct{ log logr.Logger }

func (l logrShim) Debugf(format string, v ...any) { l.log.V(2).Info(fmt.Sprintf(format, v...)) }
func (l logrShim) Infof(format string, v ...any)  { l.log.V(2).Info(fmt.Sprintf(format, v...)) }
func (l logrShim) Warnf(format string, v ...any)  { l.log.V(1).Info(fmt.Sprintf(format, v...)) }
func (l logrShim) Errorf(format string, v ...any) { l.log.V(1).Info(fmt.Sprintf(format, v...)) }
