package stripesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

// The admin API, under /_sim/ (JSON in and out, no authentication: the simulator is a test tool on loopback).
//
//	GET    /_sim/health                 200 when ready
//	POST   /_sim/keys                   register a key: KeyConfig (restricted permissions, account, revoked)
//	POST   /_sim/faults                 add a Fault; returns it with its ID
//	GET    /_sim/faults                 list faults with how often each fired
//	DELETE /_sim/faults                 remove every fault (DELETE /_sim/faults/{id} removes one)
//	GET    /_sim/stats                  request counts by endpoint pattern and status
//	GET    /_sim/objects                objects by kind and metadata.k8s_uid: {"customer": {"<uid>": 1}}
//	POST   /_sim/idempotency/expire     expire every stored idempotency key now
//	POST   /_sim/reset                  forget all objects, keys, faults, statistics and idempotency keys
//	PUT    /_sim/rate-limits            {"test": 25, "live": 100, "off": false}
//	GET    /_sim/webhooks               delivery options, pending and in-flight deliveries, events scheduled, attempts
//	                                    by status
//	PUT    /_sim/webhooks               {"retry_schedule_ms": [100, 200], "timeout_ms": 1000, "delay_ms": 0,
//	                                     "shuffle_window_ms": 500, "duplicate_fraction": 0.3, "paused": false,
//	                                     "concurrency": 0}
//	GET    /_sim/webhooks/deliveries    every delivery attempt: event, endpoint, attempt, status, error
//	POST   /_sim/disputes               dispute a paid charge: {"payment_intent": "pi_..."} (or "invoice", or
//	                                     "charge"), optional "reason" and "amount"; emits charge.dispute.created
//	POST   /_sim/disputes/{id}/close    {"status": "won"} or "lost"; emits charge.dispute.closed
//	POST   /_sim/accounts/time          move a test-mode account's time: {"account": "acct_..." (default: the
//	                                     default account), "frozen_time": <unix>}; every subscription not on a
//	                                     test clock renews, retries and expires as a test clock would move it
func (s *Sim) adminRoutes() {
	s.mux.HandleFunc("GET /_sim/health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("POST /_sim/keys", func(w http.ResponseWriter, r *http.Request) {
		var k KeyConfig
		if !readJSON(w, r, &k) {
			return
		}
		if !keyPattern.MatchString(k.Key) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "key must look like sk_test_..., " +
				"sk_live_..., rk_test_... or rk_live_..."})
			return
		}
		s.RegisterKey(k)
		writeJSON(w, http.StatusOK, map[string]string{"key": redact(k.Key)})
	})
	s.mux.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if !readJSON(w, r, &f) {
			return
		}
		added, err := s.AddFault(f)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, added)
	})
	s.mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	s.mux.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, _ *http.Request) {
		s.ClearFaults()
		writeJSON(w, http.StatusOK, map[string]string{"status": "cleared"})
	})
	s.mux.HandleFunc("DELETE /_sim/faults/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !s.RemoveFault(r.PathValue("id")) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such fault"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "removed"})
	})
	s.mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"requests": s.Stats()})
	})
	s.mux.HandleFunc("GET /_sim/objects", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.ObjectsByUID())
	})
	s.mux.HandleFunc("POST /_sim/idempotency/expire", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]int{"expired": s.ExpireIdempotencyKeys()})
	})
	s.mux.HandleFunc("POST /_sim/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		writeJSON(w, http.StatusOK, map[string]string{"status": "reset"})
	})
	s.mux.HandleFunc("GET /_sim/webhooks", func(w http.ResponseWriter, _ *http.Request) {
		byStatus := map[string]int{}
		for _, d := range s.Deliveries() {
			key := strconv.Itoa(d.Status)
			if d.Error != "" {
				key = "error"
			}
			byStatus[key]++
		}
		writeJSON(w, http.StatusOK, map[string]any{"options": webhookOptionsJSON(s.WebhookOptions()),
			"pending": s.PendingDeliveries(), "in_flight": s.InFlightDeliveries(),
			"scheduled": len(s.ScheduledEvents()), "attempts": byStatus})
	})
	s.mux.HandleFunc("PUT /_sim/webhooks", func(w http.ResponseWriter, r *http.Request) {
		var body webhookOptionsBody
		if !readJSON(w, r, &body) {
			return
		}
		if body.DuplicateFraction < 0 || body.DuplicateFraction > 1 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "duplicate_fraction must be in [0, 1]"})
			return
		}
		s.SetWebhookOptions(body.options())
		writeJSON(w, http.StatusOK, webhookOptionsJSON(s.WebhookOptions()))
	})
	s.mux.HandleFunc("GET /_sim/webhooks/deliveries", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Deliveries())
	})
	s.mux.HandleFunc("POST /_sim/disputes", func(w http.ResponseWriter, r *http.Request) {
		var body DisputeRequest
		if !readJSON(w, r, &body) {
			return
		}
		writeAdminResult(w)(s.OpenDispute(body))
	})
	s.mux.HandleFunc("POST /_sim/disputes/{id}/close", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Status string `json:"status"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		writeAdminResult(w)(s.CloseDispute(r.PathValue("id"), body.Status))
	})
	s.mux.HandleFunc("POST /_sim/accounts/time", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Account    string `json:"account"`
			FrozenTime int64  `json:"frozen_time"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		writeAdminResult(w)(s.AdvanceAccountTime(body.Account, body.FrozenTime))
	})
	s.mux.HandleFunc("PUT /_sim/rate-limits", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Test float64 `json:"test"`
			Live float64 `json:"live"`
			Off  bool    `json:"off"`
		}
		if !readJSON(w, r, &body) {
			return
		}
		s.SetRateLimits(body.Test, body.Live, body.Off)
		writeJSON(w, http.StatusOK, body)
	})
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON: " + err.Error()})
		return false
	}
	return true
}

// writeAdminResult answers an admin request with its result, or its error (an *AdminError's status, else 500).
func writeAdminResult(w http.ResponseWriter) func(any, error) {
	return func(v any, err error) {
		if err == nil {
			writeJSON(w, http.StatusOK, v)
			return
		}
		status := http.StatusInternalServerError
		var ae *AdminError
		if errors.As(err, &ae) {
			status = ae.Status
		}
		writeJSON(w, status, map[string]string{"error": err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(jsonBytes(v))
}

// RegisterKey adds or replaces a key's configuration.
func (s *Sim) RegisterKey(k KeyConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k.Key] = &k
}

// AddFault validates and adds a fault, and returns it with its ID.
func (s *Sim) AddFault(f Fault) (Fault, error) {
	if msg := f.validate(); msg != "" {
		return Fault{}, fmt.Errorf("%s", msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faultSeq++
	f.ID, f.Fired = "fault_"+strconv.Itoa(s.faultSeq), 0
	s.faults = append(s.faults, &f)
	return f, nil
}

// Faults returns the configured faults.
func (s *Sim) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fault, 0, len(s.faults))
	for _, f := range s.faults {
		out = append(out, *f)
	}
	return out
}

// ClearFaults removes every fault.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// RemoveFault removes one fault by ID.
func (s *Sim) RemoveFault(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.ID == id {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			return true
		}
	}
	return false
}

// Stats returns request counts by endpoint pattern (for example "POST /v1/customers") and HTTP status.
func (s *Sim) Stats() map[string]map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]int64, len(s.stats))
	for p, m := range s.stats {
		out[p] = make(map[string]int64, len(m))
		for status, n := range m {
			out[p][strconv.Itoa(status)] = n
		}
	}
	return out
}

// ObjectsByUID counts the objects of every account and mode by kind and metadata.k8s_uid, including deleted and
// canceled ones: more than one object for a UID is a duplicate.
func (s *Sim) ObjectsByUID() map[string]map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]int{"customer": {}, "product": {}, "price": {}, "subscription": {}, "coupon": {},
		"promotion_code": {}, "tax_rate": {},
		"billing_portal.configuration": {}}
	add := func(kind string, md map[string]string) {
		if uid := md["k8s_uid"]; uid != "" {
			out[kind][uid]++
		}
	}
	for _, st := range s.stores {
		for _, o := range st.customers {
			add("customer", o.Metadata)
		}
		for _, o := range st.products {
			add("product", o.Metadata)
		}
		for _, o := range st.prices {
			add("price", o.Metadata)
		}
		for _, o := range st.subscriptions {
			add("subscription", o.Metadata)
		}
		for _, o := range st.coupons {
			add("coupon", o.Metadata)
		}
		for _, o := range st.promotionCodes {
			add("promotion_code", o.Metadata)
		}
		for _, o := range st.taxRates {
			add("tax_rate", o.Metadata)
		}
		for _, o := range st.portalConfigs {
			add("billing_portal.configuration", o.Metadata)
		}
	}
	return out
}

// ExpireIdempotencyKeys forgets every stored idempotency result (keys in flight stay), as if the window had passed.
func (s *Sim) ExpireIdempotencyKeys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, st := range s.stores {
		for k, e := range st.idempotency {
			if !e.inFlight {
				delete(st.idempotency, k)
				n++
			}
		}
	}
	return n
}

// Reset forgets all state.
func (s *Sim) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stores = map[storeKey]*store{}
	s.keys = map[string]*KeyConfig{}
	s.limiters = map[storeKey]*rate.Limiter{}
	s.faults = nil
	s.stats = map[string]map[int]int64{}
	s.webhooks.mu.Lock()
	s.webhooks.queue, s.webhooks.attempts, s.webhooks.scheduled = nil, nil, nil
	s.webhooks.mu.Unlock()
}

// webhookOptionsBody is WebhookOptions in milliseconds, for the admin API.
type webhookOptionsBody struct {
	RetryScheduleMS   []int   `json:"retry_schedule_ms,omitempty"`
	TimeoutMS         int     `json:"timeout_ms,omitempty"`
	DelayMS           int     `json:"delay_ms"`
	ShuffleWindowMS   int     `json:"shuffle_window_ms"`
	DuplicateFraction float64 `json:"duplicate_fraction"`
	Paused            bool    `json:"paused"`
	Concurrency       int     `json:"concurrency"`
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func (b webhookOptionsBody) options() WebhookOptions {
	o := WebhookOptions{Timeout: ms(b.TimeoutMS), Delay: ms(b.DelayMS), ShuffleWindow: ms(b.ShuffleWindowMS),
		DuplicateFraction: b.DuplicateFraction, Paused: b.Paused, Concurrency: b.Concurrency}
	if b.RetryScheduleMS != nil {
		o.RetrySchedule = make([]time.Duration, 0, len(b.RetryScheduleMS))
		for _, n := range b.RetryScheduleMS {
			o.RetrySchedule = append(o.RetrySchedule, ms(n))
		}
	}
	return o
}

func webhookOptionsJSON(o WebhookOptions) webhookOptionsBody {
	b := webhookOptionsBody{TimeoutMS: int(o.Timeout.Milliseconds()), DelayMS: int(o.Delay.Milliseconds()),
		ShuffleWindowMS: int(o.ShuffleWindow.Milliseconds()), DuplicateFraction: o.DuplicateFraction,
		Paused: o.Paused, Concurrency: o.Concurrency}
	for _, d := range o.RetrySchedule {
		b.RetryScheduleMS = append(b.RetryScheduleMS, int(d.Milliseconds()))
	}
	return b
}

// SetRateLimits changes the rate limits; zero keeps a value.
func (s *Sim) SetRateLimits(test, live float64, off bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if test > 0 {
		s.opts.TestRate = test
	}
	if live > 0 {
		s.opts.LiveRate = live
	}
	s.opts.RateLimitOff = off
	s.limiters = map[storeKey]*rate.Limiter{}
}

// snapshot is the persisted state.
type snapshot struct {
	Stores []storeSnapshot       `json:"stores"`
	Keys   map[string]*KeyConfig `json:"keys"`
}

type storeSnapshot struct {
	Account        string                      `json:"account"`
	Live           bool                        `json:"live"`
	Seq            int64                       `json:"seq"`
	Customers      map[string]*customer        `json:"customers"`
	Products       map[string]*product         `json:"products"`
	Prices         map[string]*price           `json:"prices"`
	Subscriptions  map[string]*subscription    `json:"subscriptions"`
	Invoices       map[string]*invoice         `json:"invoices"`
	Endpoints      map[string]*webhookEndpoint `json:"endpoints"`
	Charges        map[string]*simCharge       `json:"charges"`
	Disputes       map[string]*dispute         `json:"disputes"`
	PaymentMethods map[string]*paymentMethod   `json:"payment_methods"`
	TimeShift      int64                       `json:"time_shift,omitempty"`
	Coupons        map[string]*coupon          `json:"coupons"`
	PromotionCodes map[string]*promotionCode   `json:"promotion_codes"`
	TaxRates       map[string]*taxRate         `json:"tax_rates"`
	TaxIDs         map[string]*taxID           `json:"tax_ids"`
	Meters         map[string]*meter           `json:"meters"`
	MeterEvents    []*meterEvent               `json:"meter_events"`
	PortalConfigs  map[string]*portalConfig    `json:"portal_configurations"`
}

// Save writes the objects and keys to path (idempotency keys, faults and statistics are not persisted).
func (s *Sim) Save(path string) error {
	s.mu.Lock()
	snap := snapshot{Keys: s.keys}
	for k, st := range s.stores {
		snap.Stores = append(snap.Stores, storeSnapshot{Account: k.account, Live: k.live, Seq: st.seq,
			Customers: st.customers, Products: st.products, Prices: st.prices, Subscriptions: st.subscriptions,
			Invoices: st.invoices, Endpoints: st.endpoints, Charges: st.charges, Disputes: st.disputes,
			PaymentMethods: st.paymentMethods, TimeShift: st.timeShift, Coupons: st.coupons,
			PromotionCodes: st.promotionCodes, TaxRates: st.taxRates, TaxIDs: st.taxIDs, Meters: st.meters,
			MeterEvents: st.meterEvents, PortalConfigs: st.portalConfigs})
	}
	data, err := json.Marshal(snap)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encoding the state: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing the state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing the state: %w", err)
	}
	return nil
}

// Load replaces the state with what Save wrote to path.
func (s *Sim) Load(path string) error {
	data, err := os.ReadFile(path) //nolint:gosec // G304: the operator of the simulator chooses the path
	if err != nil {
		return fmt.Errorf("reading the state: %w", err)
	}
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("decoding the state in %s: %w", path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stores = map[storeKey]*store{}
	for _, ss := range snap.Stores {
		st := newStore(ss.Live)
		st.seq, st.timeShift = ss.Seq, ss.TimeShift
		maps.Copy(st.customers, ss.Customers)
		maps.Copy(st.products, ss.Products)
		maps.Copy(st.prices, ss.Prices)
		maps.Copy(st.subscriptions, ss.Subscriptions)
		maps.Copy(st.invoices, ss.Invoices)
		for _, o := range ss.Invoices {
			if o.PaymentIntent != nil {
				st.intents[o.PaymentIntent.ID] = o.PaymentIntent
			}
		}
		maps.Copy(st.endpoints, ss.Endpoints)
		maps.Copy(st.charges, ss.Charges)
		maps.Copy(st.disputes, ss.Disputes)
		maps.Copy(st.paymentMethods, ss.PaymentMethods)
		maps.Copy(st.coupons, ss.Coupons)
		maps.Copy(st.promotionCodes, ss.PromotionCodes)
		maps.Copy(st.taxRates, ss.TaxRates)
		maps.Copy(st.taxIDs, ss.TaxIDs)
		maps.Copy(st.meters, ss.Meters)
		st.meterEvents = ss.MeterEvents
		for _, ev := range ss.MeterEvents {
			st.meterEventIDs[ev.Identifier] = true
		}
		maps.Copy(st.portalConfigs, ss.PortalConfigs)
		s.stores[storeKey{account: ss.Account, live: ss.Live}] = st
	}
	if snap.Keys != nil {
		s.keys = snap.Keys
	}
	return nil
}
