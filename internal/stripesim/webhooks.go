package stripesim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// webhookEndpoint is a registered endpoint.
type webhookEndpoint struct {
	meta
	URL           string   `json:"url"`
	EnabledEvents []string `json:"enabled_events"`
	APIVersion    string   `json:"api_version"`
	Secret        string   `json:"secret"`
	Disabled      bool     `json:"disabled"`
	Description   string   `json:"description"`
}

func (s *store) renderEndpoint(e *webhookEndpoint, withSecret bool) obj {
	status := "enabled"
	if e.Disabled {
		status = "disabled"
	}
	o := obj{"id": e.ID, "object": "webhook_endpoint", "api_version": e.APIVersion, "application": nil,
		"created": e.Created, "description": nilIfEmpty(e.Description), "enabled_events": e.EnabledEvents,
		"livemode": s.live, "metadata": metadataJSON(e.Metadata), "status": status, "url": e.URL}
	if withSecret {
		o["secret"] = e.Secret
	}
	return o
}

func (c *call) endpointFields(e *webhookEndpoint, creating bool) {
	f, p := &c.f, c.form
	allowed := []string{"url", "enabled_events", "description", "metadata", "disabled"}
	if creating {
		allowed = []string{"url", "enabled_events", "description", "metadata", "api_version", "connect"}
	}
	f.unknown(p, allowed...)
	if u, ok := f.str(p, "url"); ok {
		if parsed, err := url.Parse(u); err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") ||
			parsed.Host == "" {
			f.fail("url", "Invalid URL: %s", u)
		}
		e.URL = u
	} else if creating && f.err == nil {
		f.err = missingParam("url")
	}
	if n := p.get("enabled_events"); n != nil {
		e.EnabledEvents = nil
		for _, v := range n.list() {
			if v.value != nil {
				e.EnabledEvents = append(e.EnabledEvents, *v.value)
			}
		}
	}
	if creating && len(e.EnabledEvents) == 0 && f.err == nil {
		f.err = missingParam("enabled_events")
	}
	// Any api_version is accepted, unlike a request's Stripe-Version (Options.AnyAPIVersion): an operator must cope
	// with events of versions other than its own, and tests register such endpoints to see it do so
	// (TestEventsCarryTheEndpointsAPIVersionAndDelay). Their events are labelled with the endpoint's version and
	// rendered in 2023-10-16 shapes.
	if v, ok := f.str(p, "api_version"); ok {
		e.APIVersion = v
	}
	if v, ok := f.str(p, "description"); ok {
		e.Description = v
	}
	if v, ok := f.boolean(p, "disabled"); ok {
		e.Disabled = v
	}
	e.Metadata = f.metadata(p, e.Metadata)
}

func (c *call) createEndpoint() (any, *apiError) {
	e := &webhookEndpoint{meta: c.nextMeta("we"), APIVersion: apiVersion}
	c.endpointFields(e, true)
	if c.f.err != nil {
		return nil, c.f.err
	}
	e.Secret = "whsec_" + c.sim.newID("x")[2:] + c.sim.newID("x")[2:]
	c.st.endpoints[e.ID] = e
	return c.st.renderEndpoint(e, true), nil
}

func (c *call) endpoint() (*webhookEndpoint, *apiError) {
	e, ok := c.st.endpoints[c.id]
	if !ok {
		return nil, noSuch("webhook endpoint", "id", c.id)
	}
	return e, nil
}

func (c *call) getEndpoint() (any, *apiError) {
	c.f.unknown(c.form)
	e, err := c.endpoint()
	if err != nil {
		return nil, err
	}
	return c.st.renderEndpoint(e, false), nil
}

func (c *call) updateEndpoint() (any, *apiError) {
	e, err := c.endpoint()
	if err != nil {
		return nil, err
	}
	next := *e
	c.endpointFields(&next, false)
	if c.f.err != nil {
		return nil, c.f.err
	}
	*e = next
	return c.st.renderEndpoint(e, false), nil
}

func (c *call) deleteEndpoint() (any, *apiError) {
	c.f.unknown(c.form)
	e, err := c.endpoint()
	if err != nil {
		return nil, err
	}
	delete(c.st.endpoints, e.ID)
	return obj{"id": e.ID, "object": "webhook_endpoint", "deleted": true}, nil
}

func (c *call) listEndpoints() (any, *apiError) {
	c.listParams()
	return list(c, "/v1/webhook_endpoints", values(c.st.endpoints),
		func(e *webhookEndpoint) obj { return c.st.renderEndpoint(e, false) }), nil
}

// WebhookOptions shape delivery; change them with PUT /_sim/webhooks or SetWebhookOptions.
type WebhookOptions struct {
	// RetrySchedule is the wait before each retry of a failed delivery (default: Stripe's live-mode schedule
	// compressed to 1 s, 5 s, 30 s, 2 min, 10 min); after the last one the delivery is given up.
	RetrySchedule []time.Duration `json:"retry_schedule"`
	// Timeout bounds one delivery attempt (default 10 s); a timeout counts as a failure.
	Timeout time.Duration `json:"timeout"`
	// Delay holds every first attempt back this long.
	Delay time.Duration `json:"delay"`
	// ShuffleWindow delays each first attempt by a random duration below it, so events arrive out of order.
	ShuffleWindow time.Duration `json:"shuffle_window"`
	// DuplicateFraction of events are delivered twice.
	DuplicateFraction float64 `json:"duplicate_fraction"`
	// Paused holds all deliveries until it is unset.
	Paused bool `json:"paused"`
	// Concurrency bounds the delivery attempts in flight at once (0: no bound). Stripe sends a burst of events
	// (a renewal day) over a bounded number of parallel connections, the rest waiting their turn, so a slow
	// endpoint delays the later events rather than receiving them all at once.
	Concurrency int `json:"concurrency"`
}

// Delivery is one delivery attempt, for the admin statistics.
type Delivery struct {
	EventID    string    `json:"event_id"`
	EventType  string    `json:"event_type"`
	EndpointID string    `json:"endpoint_id"`
	Attempt    int       `json:"attempt"`
	Status     int       `json:"status"`
	Error      string    `json:"error,omitempty"`
	At         time.Time `json:"at"`
	// Duplicate marks the attempts of the second copy of an event delivered twice (DuplicateFraction).
	Duplicate bool `json:"duplicate,omitempty"`
	// Duration is how long the endpoint took to answer (or to fail).
	Duration time.Duration `json:"duration"`
}

// ScheduledEvent is an event queued for delivery to an endpoint: what Stripe owes that endpoint.
type ScheduledEvent struct {
	EventID    string `json:"event_id"`
	EventType  string `json:"event_type"`
	EndpointID string `json:"endpoint_id"`
	// Copies is 2 for an event delivered twice (DuplicateFraction), else 1.
	Copies int `json:"copies"`
}

type delivery struct {
	endpoint *webhookEndpoint
	payload  []byte
	eventID  string
	typ      string
	attempt  int
	due      time.Time
	// duplicate is the second copy of an event delivered twice.
	duplicate bool
}

// dispatcher delivers events to endpoints in the background.
type dispatcher struct {
	mu        sync.Mutex
	opts      WebhookOptions
	queue     []*delivery
	attempts  []Delivery
	scheduled []ScheduledEvent
	// running counts the attempts under way, which inFlight lets Close wait for.
	running  int
	wake     chan struct{}
	client   *http.Client
	inFlight sync.WaitGroup
}

func newDispatcher() *dispatcher {
	return &dispatcher{
		opts: WebhookOptions{RetrySchedule: []time.Duration{time.Second, 5 * time.Second, 30 * time.Second,
			2 * time.Minute, 10 * time.Minute}, Timeout: 10 * time.Second},
		wake:   make(chan struct{}, 1),
		client: &http.Client{},
	}
}

func (d *dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// enqueue schedules the deliveries of events to the store's matching endpoints (called with s.mu held).
func (s *Sim) enqueue(st *store, events []*event) {
	if len(events) == 0 || len(st.endpoints) == 0 {
		return
	}
	d := s.webhooks
	d.mu.Lock()
	opts := d.opts
	d.mu.Unlock()
	now := time.Now()
	var added []*delivery
	var scheduled []ScheduledEvent
	for _, ev := range events {
		for _, e := range st.endpoints {
			if e.Disabled || !slices.ContainsFunc(e.EnabledEvents, func(p string) bool { return typeMatches(p, ev.Type) }) {
				continue
			}
			payload, _ := json.Marshal(st.renderEvent(ev, e.APIVersion, 1))
			due := now.Add(opts.Delay)
			if opts.ShuffleWindow > 0 {
				due = due.Add(time.Duration(s.randFloat() * float64(opts.ShuffleWindow)))
			}
			added = append(added, &delivery{endpoint: e, payload: payload, eventID: ev.ID, typ: ev.Type, due: due})
			sched := ScheduledEvent{EventID: ev.ID, EventType: ev.Type, EndpointID: e.ID, Copies: 1}
			if opts.DuplicateFraction > 0 && s.randFloat() < opts.DuplicateFraction {
				dup := time.Duration(s.randFloat() * float64(max(opts.ShuffleWindow, 10*time.Millisecond)))
				added = append(added, &delivery{endpoint: e, payload: payload, eventID: ev.ID, typ: ev.Type,
					due: due.Add(dup), duplicate: true})
				sched.Copies = 2
			}
			scheduled = append(scheduled, sched)
		}
	}
	d.mu.Lock()
	d.queue = append(d.queue, added...)
	d.scheduled = append(d.scheduled, scheduled...)
	d.mu.Unlock()
	d.poke()
}

// run delivers due deliveries until ctx ends.
func (d *dispatcher) run(ctx context.Context) {
	for {
		d.mu.Lock()
		paused := d.opts.Paused
		now := time.Now()
		next := time.Hour
		var due []*delivery
		if !paused {
			free := len(d.queue)
			if d.opts.Concurrency > 0 {
				free = max(d.opts.Concurrency-d.running, 0)
			}
			rest := d.queue[:0]
			for _, q := range d.queue {
				if !q.due.After(now) && len(due) < free {
					due = append(due, q)
				} else {
					rest = append(rest, q)
					if q.due.After(now) {
						// Due ones held back by the concurrency bound go when an attempt ends (it pokes).
						next = min(next, q.due.Sub(now))
					}
				}
			}
			d.queue = rest
		}
		d.running += len(due)
		d.mu.Unlock()
		for _, q := range due {
			d.inFlight.Add(1)
			go func() {
				defer d.inFlight.Done()
				d.attempt(ctx, q)
			}()
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-d.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// sign renders Stripe's signature header for payload at t.
func sign(secret string, t time.Time, payload []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(t.Unix(), 10)))
	mac.Write([]byte("."))
	mac.Write(payload)
	return fmt.Sprintf("t=%d,v1=%s", t.Unix(), hex.EncodeToString(mac.Sum(nil)))
}

func (d *dispatcher) attempt(ctx context.Context, q *delivery) {
	d.mu.Lock()
	opts := d.opts
	d.mu.Unlock()
	q.attempt++
	actx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	rec := Delivery{EventID: q.eventID, EventType: q.typ, EndpointID: q.endpoint.ID, Attempt: q.attempt,
		At: time.Now(), Duplicate: q.duplicate}
	req, err := http.NewRequestWithContext(actx, http.MethodPost, q.endpoint.URL, bytes.NewReader(q.payload))
	if err == nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
		req.Header.Set("Stripe-Signature", sign(q.endpoint.Secret, time.Now(), q.payload))
		var resp *http.Response
		if resp, err = d.client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			_ = resp.Body.Close()
			rec.Status = resp.StatusCode
		}
	}
	if err != nil {
		rec.Error = err.Error()
	}
	rec.Duration = time.Since(rec.At)
	d.mu.Lock()
	d.running--
	d.attempts = append(d.attempts, rec)
	if (err != nil || rec.Status < 200 || rec.Status > 299) && q.attempt <= len(opts.RetrySchedule) &&
		ctx.Err() == nil {
		q.due = time.Now().Add(opts.RetrySchedule[q.attempt-1])
		d.queue = append(d.queue, q)
	}
	d.mu.Unlock()
	d.poke()
}

// SetWebhookOptions changes how webhooks are delivered; a nil RetrySchedule or zero Timeout keeps the current one.
func (s *Sim) SetWebhookOptions(o WebhookOptions) {
	d := s.webhooks
	d.mu.Lock()
	if o.RetrySchedule == nil {
		o.RetrySchedule = d.opts.RetrySchedule
	}
	if o.Timeout == 0 {
		o.Timeout = d.opts.Timeout
	}
	d.opts = o
	d.mu.Unlock()
	d.poke()
}

// WebhookOptions returns the delivery options.
func (s *Sim) WebhookOptions() WebhookOptions {
	s.webhooks.mu.Lock()
	defer s.webhooks.mu.Unlock()
	return s.webhooks.opts
}

// Deliveries returns every delivery attempt so far.
func (s *Sim) Deliveries() []Delivery {
	s.webhooks.mu.Lock()
	defer s.webhooks.mu.Unlock()
	return slices.Clone(s.webhooks.attempts)
}

// ScheduledEvents returns every event queued for delivery so far, one entry per event and endpoint.
func (s *Sim) ScheduledEvents() []ScheduledEvent {
	s.webhooks.mu.Lock()
	defer s.webhooks.mu.Unlock()
	return slices.Clone(s.webhooks.scheduled)
}

// InFlightDeliveries counts delivery attempts under way. With PendingDeliveries it tells when delivery is idle:
// an attempt that fails is queued for its retry before it stops counting here.
func (s *Sim) InFlightDeliveries() int {
	s.webhooks.mu.Lock()
	defer s.webhooks.mu.Unlock()
	return s.webhooks.running
}

// PendingDeliveries counts deliveries waiting for their first attempt or a retry.
func (s *Sim) PendingDeliveries() int {
	s.webhooks.mu.Lock()
	defer s.webhooks.mu.Unlock()
	return len(s.webhooks.queue)
}
