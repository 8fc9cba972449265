// Package stripesim is a stateful simulator of the Stripe API, as stripe-go v76 speaks it (API version 2023-10-16).
//
// It keeps customers, products, prices and subscriptions per account and mode, enforces the Stripe rules the
// operator must live with, implements idempotency keys as Stripe documents them, authenticates secret and
// restricted keys, rate-limits per account, and misbehaves on demand through an admin API under /_sim/ (errors,
// latency, commit-then-fail). Use it in-process with httptest.NewServer(sim) or as the stripesim binary.
package stripesim

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Default rate limits, from Stripe's published limits.
const (
	DefaultTestRate = 25
	DefaultLiveRate = 100
	// DefaultIdempotencyTTL is how long Stripe keeps an idempotency key's result (at least 24 hours).
	DefaultIdempotencyTTL = 24 * time.Hour
	// DefaultAccount is the account every secret key belongs to unless registered otherwise.
	DefaultAccount = "acct_simulator"
)

// Options configure a Sim. The zero value is Stripe's defaults.
type Options struct {
	// TestRate and LiveRate are the per-account request rates in operations per second for test-mode and
	// live-mode keys (defaults 25 and 100). RateLimitOff disables rate limiting.
	TestRate, LiveRate float64
	RateLimitOff       bool
	// IdempotencyTTL is how long an idempotency key's result is kept (default 24 h).
	IdempotencyTTL time.Duration
	// Seed makes IDs and fault injection reproducible; 0 picks a random seed.
	Seed uint64
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Record keeps every request the simulator executed successfully, for replay against stripe-mock.
	Record bool
	// Dunning shapes what follows a failed renewal.
	Dunning DunningOptions
	// StrictPaymentMethods models Stripe's payment methods: a test token given as payment_method on customer
	// creation becomes a pm_ object attached to the customer (and names it for the rest of the request, so it can
	// be the default in the same request), and invoice_settings.default_payment_method or a subscription's
	// default_payment_method must name a payment method attached to that customer. Off (the default, until the
	// operator attaches), payment_method on customer creation attaches nothing and a default may be any pm_ ID or
	// test token, kept as sent; attach, detach, retrieve and list work either way.
	StrictPaymentMethods bool
	// AnyAPIVersion serves a request whose Stripe-Version header names a version other than 2023-10-16, the one
	// stripesim models, answering it in 2023-10-16 shapes. Off (the default), such a request is refused with a
	// 400 naming both versions, so a client on another version learns it at once.
	AnyAPIVersion bool
}

// Request is a recorded API request: what a client sent, without its credentials.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	// Params is the form-encoded body of a POST, or the query string of a GET or DELETE.
	Params string `json:"params"`
}

// Sim is the simulator. It is an http.Handler.
type Sim struct {
	opts Options
	mux  *http.ServeMux

	rngMu sync.Mutex
	rng   *rand.Rand

	mu       sync.Mutex
	stores   map[storeKey]*store
	keys     map[string]*KeyConfig
	limiters map[storeKey]*rate.Limiter
	faults   []*Fault
	faultSeq int
	stats    map[string]map[int]int64
	recorded []Request

	webhooks *dispatcher
	stop     context.CancelFunc
}

type storeKey struct {
	account string
	live    bool
}

// store is one account's data in one mode.
type store struct {
	live           bool
	seq            int64
	customers      map[string]*customer
	products       map[string]*product
	prices         map[string]*price
	subscriptions  map[string]*subscription
	invoices       map[string]*invoice
	idempotency    map[string]*idemEntry
	events         []*event
	eventsByID     map[string]*event
	endpoints      map[string]*webhookEndpoint
	clocks         map[string]*testClock
	intents        map[string]*paymentIntent
	charges        map[string]*simCharge
	disputes       map[string]*dispute
	paymentMethods map[string]*paymentMethod
	// timeShift is how far the account's time is ahead of the simulator's clock, in seconds: objects not on a
	// test clock live at the account's time (AdvanceAccountTime moves it).
	timeShift      int64
	coupons        map[string]*coupon
	promotionCodes map[string]*promotionCode
	// now is the time of the request being executed: a coupon's validity depends on it.
	now      int64
	taxRates map[string]*taxRate
	taxIDs   map[string]*taxID
	// meters, and the meter events recorded (meterEventIDs: their identifiers, unique per account).
	meters        map[string]*meter
	meterEvents   []*meterEvent
	meterEventIDs map[string]bool
	// portalConfigs are the customer portal configurations (billing_portal.configuration).
	portalConfigs map[string]*portalConfig
	// features, productFeatures and entitled (the feature IDs of each customer's last entitlement summary) model
	// entitlements (entitlements.go).
	features        map[string]*feature
	productFeatures map[string]*productFeature
	entitled        map[string][]string
}

// accountNow is the account's time at the simulator's clock reading now.
func (s *store) accountNow(now time.Time) int64 { return now.Unix() + s.timeShift }

func newStore(live bool) *store {
	return &store{
		live:            live,
		customers:       map[string]*customer{},
		products:        map[string]*product{},
		prices:          map[string]*price{},
		subscriptions:   map[string]*subscription{},
		invoices:        map[string]*invoice{},
		idempotency:     map[string]*idemEntry{},
		eventsByID:      map[string]*event{},
		endpoints:       map[string]*webhookEndpoint{},
		clocks:          map[string]*testClock{},
		intents:         map[string]*paymentIntent{},
		charges:         map[string]*simCharge{},
		disputes:        map[string]*dispute{},
		paymentMethods:  map[string]*paymentMethod{},
		coupons:         map[string]*coupon{},
		promotionCodes:  map[string]*promotionCode{},
		taxRates:        map[string]*taxRate{},
		taxIDs:          map[string]*taxID{},
		meters:          map[string]*meter{},
		meterEventIDs:   map[string]bool{},
		portalConfigs:   map[string]*portalConfig{},
		features:        map[string]*feature{},
		productFeatures: map[string]*productFeature{},
		entitled:        map[string][]string{},
	}
}

type idemEntry struct {
	fingerprint string
	inFlight    bool
	status      int
	body        []byte
	requestID   string
	created     time.Time
}

// New returns a simulator with the given options.
func New(opts Options) *Sim {
	if opts.TestRate == 0 {
		opts.TestRate = DefaultTestRate
	}
	if opts.LiveRate == 0 {
		opts.LiveRate = DefaultLiveRate
	}
	if opts.IdempotencyTTL == 0 {
		opts.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64() //nolint:gosec // G404: simulated IDs need no cryptographic randomness
	}
	s := &Sim{
		opts:     opts,
		mux:      http.NewServeMux(),
		rng:      rand.New(rand.NewPCG(seed, seed^0x5eed)), //nolint:gosec // G404: reproducible on purpose
		stores:   map[storeKey]*store{},
		keys:     map[string]*KeyConfig{},
		limiters: map[storeKey]*rate.Limiter{},
		stats:    map[string]map[int]int64{},
		webhooks: newDispatcher(),
	}
	s.routes()
	s.adminRoutes()
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go s.webhooks.run(ctx)
	return s
}

func (s *Sim) dunning() DunningOptions { return s.opts.Dunning.withDefaults() }

// Close stops webhook delivery and waits for attempts in flight.
func (s *Sim) Close() {
	s.stop()
	s.webhooks.inFlight.Wait()
}

// ServeHTTP implements http.Handler.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// handlerFunc is one API endpoint's logic. It runs with the simulator locked.
type handlerFunc func(c *call) (any, *apiError)

// call is one API request being executed.
type call struct {
	sim  *Sim
	st   *store
	form *param
	f    formReader
	id   string
	// pathCustomer is the customer of a sub-resource path (/v1/customers/{customer}/tax_ids).
	pathCustomer string
	now          int64
	expand       map[string]bool
	// events are recorded by the handler and stored only if it succeeds.
	events []pendingEvent
	// tokens are the payment methods made from test tokens in this request, by token.
	tokens map[string]*paymentMethod
	// attach is the payment method a customer creation attaches once it succeeds.
	attach *paymentMethod
	// pathProduct is the product of a sub-resource path (/v1/products/{product}/features); featureProducts are the
	// products whose features the call changed (entitlements.go).
	pathProduct     string
	featureProducts []string
}

// pathIDs are the IDs a request's path names.
type pathIDs struct{ id, customer, product string }

const (
	read  = false
	write = true
)

// endpoint wraps an API handler with Stripe's request pipeline: authentication and permissions, the rate limit,
// injected faults, idempotency, execution, and the response.
func (s *Sim) endpoint(pattern, resource string, isWrite bool, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		requestID := s.newID("req")
		w.Header().Set("Request-Id", requestID)
		w.Header().Set("Stripe-Version", apiVersion)
		status := s.serve(w, r, resource, isWrite, requestID, h)
		s.count(pattern, status)
	})
}

func (s *Sim) serve(w http.ResponseWriter, r *http.Request, resource string, isWrite bool,
	requestID string, h handlerFunc) int {
	key, ok := bearerKey(r)
	if !ok {
		return writeError(w, &apiError{Status: http.StatusUnauthorized, Type: typeInvalidRequest,
			Message: "You did not provide an API key. Provide it in the Authorization header as a Bearer token."})
	}
	sk, apiErr := s.authenticate(key, resource, isWrite)
	if apiErr != nil {
		return writeError(w, apiErr)
	}
	if acct := r.Header.Get("Stripe-Account"); acct != "" {
		sk.account = acct
	}
	if v := r.Header.Get("Stripe-Version"); v != "" && v != apiVersion && !s.opts.AnyAPIVersion {
		return writeError(w, unmodelledVersion(v))
	}
	if !s.allow(sk) {
		return writeError(w, &apiError{Status: http.StatusTooManyRequests, Type: typeInvalidRequest,
			Code: codeRateLimit, Message: "Request rate limit exceeded. Learn more about rate limits here " +
				"https://stripe.com/docs/rate-limits."})
	}
	before, commitFault := s.pickFaults(r.Method, r.URL.Path)
	beforeActed, commitActed := false, false
	defer func() {
		if !beforeActed {
			s.release(before)
		}
		if !commitActed {
			s.release(commitFault)
		}
	}()
	if before != nil && before.Kind == FaultError {
		beforeActed = true
		return writeError(w, before.apiError())
	}

	values, err := formValues(r)
	if err != nil {
		return writeError(w, invalidRequest("Invalid request body: "+err.Error()))
	}
	form, err := parseForm(values)
	if err != nil {
		return writeError(w, invalidRequest(err.Error()))
	}

	idemKey := ""
	if r.Method == http.MethodPost || r.Method == http.MethodDelete {
		idemKey = r.Header.Get("Idempotency-Key")
	}
	fingerprint := r.Method + " " + r.URL.Path + "?" + values.Encode()
	if idemKey != "" {
		if done := s.idempotencyBegin(w, sk, idemKey, fingerprint); done != 0 {
			return done
		}
	}
	if before != nil && before.Kind == FaultLatency {
		beforeActed = true
		time.Sleep(before.latency())
	}

	kind := "" // a write's expand[] is checked before it changes anything: a refused request has no effect
	if isWrite {
		kind = resourceObject(resource)
	}
	status, body := s.execute(sk, form, pathIDs{id: r.PathValue("id"), customer: r.PathValue("customer"),
		product: r.PathValue("product")},
		requestID, idemKey, kind, h)
	if s.opts.Record && status < 300 {
		s.record(Request{Method: r.Method, Path: r.URL.Path, Params: values.Encode()})
	}
	if idemKey != "" {
		s.idempotencyEnd(sk, idemKey, status, body, requestID)
	}
	if commitFault != nil && status < 300 {
		commitActed = true
		return commitFault.failAfterCommit(w)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body) //nolint:gosec // G705: a JSON API response, never rendered as HTML
	return status
}

// execute runs the handler under the lock and renders its result.
// kind, when set, is the object the handler returns, whose expandable fields the top level of expand[] is checked
// against before the handler runs.
func (s *Sim) execute(sk sessionKey, form *param, ids pathIDs, requestID, idemKey, kind string,
	h handlerFunc) (int, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.storeFor(sk)
	c := &call{sim: s, st: st, form: form, id: ids.id, pathCustomer: ids.customer, now: st.accountNow(s.opts.Now()),
		tokens: map[string]*paymentMethod{}, pathProduct: ids.product}
	c.st.now = c.now
	c.expand = c.f.expand(form)
	if apiErr := checkExpandTop(kind, c.expand); apiErr != nil {
		return apiErr.Status, errorBody(apiErr)
	}
	res, apiErr := h(c)
	if apiErr == nil && c.f.err != nil {
		apiErr = c.f.err
	}
	if apiErr == nil {
		res, apiErr = c.expandResponse(res)
	}
	if apiErr != nil {
		return apiErr.Status, errorBody(apiErr)
	}
	body, err := json.Marshal(res)
	if err != nil {
		e := &apiError{Status: http.StatusInternalServerError, Type: typeAPI, Message: err.Error()}
		return e.Status, errorBody(e)
	}
	s.enqueue(c.st, c.commitEvents(requestID, idemKey))
	return http.StatusOK, body
}

func (s *Sim) storeFor(sk sessionKey) *store {
	k := storeKey{account: sk.account, live: sk.live}
	st, ok := s.stores[k]
	if !ok {
		st = newStore(sk.live)
		s.stores[k] = st
	}
	return st
}

// idempotencyBegin looks the key up. It writes the response and returns its status when the request is answered
// from the key (a replay, a conflict, or a key in use); otherwise it marks the key in flight and returns 0.
func (s *Sim) idempotencyBegin(w http.ResponseWriter, sk sessionKey, key, fingerprint string) int {
	s.mu.Lock()
	st := s.storeFor(sk)
	now := s.opts.Now()
	e, ok := st.idempotency[key]
	if ok && !e.inFlight && now.Sub(e.created) >= s.opts.IdempotencyTTL {
		delete(st.idempotency, key)
		ok = false
	}
	if !ok {
		st.idempotency[key] = &idemEntry{fingerprint: fingerprint, inFlight: true, created: now}
		s.mu.Unlock()
		return 0
	}
	entry := *e
	s.mu.Unlock()

	switch {
	case entry.inFlight:
		return writeError(w, &apiError{Status: http.StatusConflict, Type: typeInvalidRequest,
			Code: codeIdempotencyKeyInUse, Message: "There is currently another in-progress request using this " +
				"Idempotent Key (that probably means you submitted twice, and the other request is still going " +
				"through): " + key + ". Please try again later."})
	case entry.fingerprint != fingerprint:
		return writeError(w, &apiError{Status: http.StatusBadRequest, Type: typeIdempotency,
			Message: "Keys for idempotent requests can only be used with the same parameters they were first " +
				"used with. Try using a key other than '" + key + "' if you meant to execute a different request."})
	}
	w.Header().Set("Idempotent-Replayed", "true")
	w.Header().Set("Original-Request", entry.requestID)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(entry.status)
	_, _ = w.Write(entry.body)
	return entry.status
}

// idempotencyEnd stores the result of an executed request, or forgets the key when the request failed before
// Stripe would have started executing it (validation errors store nothing).
func (s *Sim) idempotencyEnd(sk sessionKey, key string, status int, body []byte, requestID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.storeFor(sk)
	e := st.idempotency[key]
	if e == nil {
		return
	}
	if status >= 400 && status < 500 && status != http.StatusPaymentRequired {
		delete(st.idempotency, key)
		return
	}
	e.inFlight, e.status, e.body, e.requestID = false, status, body, requestID
}

func formValues(r *http.Request) (url.Values, error) {
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		return r.PostForm, nil
	}
	return r.URL.Query(), nil
}

func errorBody(e *apiError) []byte {
	b, _ := json.Marshal(map[string]*apiError{"error": e})
	return b
}

func writeError(w http.ResponseWriter, e *apiError) int {
	w.Header().Set("Content-Type", "application/json")
	if e.Status == http.StatusConflict || e.Status >= 500 {
		w.Header().Set("Stripe-Should-Retry", "true")
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(errorBody(e))
	return e.Status
}

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newID returns prefix_ and 14 random characters, as Stripe IDs look. It takes the lock itself only when needed.
func (s *Sim) newID(prefix string) string {
	var b strings.Builder
	b.Grow(len(prefix) + 15)
	b.WriteString(prefix)
	b.WriteByte('_')
	for range 14 {
		b.WriteByte(idAlphabet[s.randN(len(idAlphabet))])
	}
	return b.String()
}

// randN is a random number below n; the generator has its own lock so it can be used with or without mu.
func (s *Sim) randN(n int) int {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.IntN(n)
}

func (s *Sim) randFloat() float64 {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64()
}

func (c *call) nextMeta(prefix string) meta {
	c.st.seq++
	return meta{ID: c.sim.newID(prefix), Created: c.now, Seq: c.st.seq, Metadata: map[string]string{}}
}

func (s *Sim) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recorded = append(s.recorded, r)
}

// Recorded returns the requests executed successfully so far (with Options.Record).
func (s *Sim) Recorded() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.recorded...)
}

// count records a response in the request statistics.
func (s *Sim) count(pattern string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.stats[pattern]
	if !ok {
		m = map[int]int64{}
		s.stats[pattern] = m
	}
	m[status]++
}

// notFound answers any URL no endpoint matches, in Stripe's shape.
func (s *Sim) notFound(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Request-Id", s.newID("req"))
	s.count("unmatched", writeError(w, unrecognizedURL(r.Method, r.URL.Path)))
}

// jsonBytes renders v for tests and the admin API.
func jsonBytes(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	return buf.Bytes()
}
