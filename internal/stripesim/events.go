package stripesim

import (
	"encoding/json"
	"reflect"
)

// event is a recorded Stripe Event.
type event struct {
	meta
	Type               string         `json:"type"`
	Object             map[string]any `json:"object"`
	PreviousAttributes map[string]any `json:"previous_attributes,omitempty"`
	RequestID          string         `json:"request_id,omitempty"`
	IdempotencyKey     string         `json:"idempotency_key,omitempty"`
}

// emit records an event of the mutation the call is making; it is stored only if the call succeeds.
// prev is the object as it was before an update (nil for creations and deletions).
func (c *call) emit(typ string, object, prev obj) {
	c.events = append(c.events, pendingEvent{typ: typ, object: object, prev: prev, at: c.now})
}

// emitUpdate records typ if the object changed.
func (c *call) emitUpdate(typ string, before, after obj) {
	if changedAttributes(before, after) != nil {
		c.emit(typ, after, before)
	}
}

type pendingEvent struct {
	typ          string
	object, prev obj
	at           int64 // when it happened (a test clock's time for lifecycle steps)
}

// changedAttributes returns the top-level attributes of before that differ in after, with their old values, as
// Stripe's data.previous_attributes; nil when nothing changed.
func changedAttributes(before, after obj) map[string]any {
	// Compare through JSON, so that typed values (pointers, slices) compare as the API renders them.
	b, a := normalize(before), normalize(after)
	out := map[string]any{}
	for k, v := range b {
		if !reflect.DeepEqual(v, a[k]) {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func normalize(o obj) map[string]any {
	data, _ := json.Marshal(o)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return m
}

// commitEvents stores the call's events in the account's event log (under s.mu) and returns them for delivery.
func (c *call) commitEvents(requestID, idemKey string) []*event {
	c.entitlementSummaries()
	out := make([]*event, 0, len(c.events))
	for _, pe := range c.events {
		ev := &event{meta: c.nextMeta("evt"), Type: pe.typ, Object: normalize(pe.object), RequestID: requestID,
			IdempotencyKey: idemKey}
		ev.Created = pe.at
		if pe.prev != nil {
			ev.PreviousAttributes = changedAttributes(pe.prev, pe.object)
		}
		c.st.events = append(c.st.events, ev)
		c.st.eventsByID[ev.ID] = ev
		out = append(out, ev)
	}
	return out
}

// renderEvent renders an event as API version apiVersion shows it (the simulator renders every version alike).
func (s *store) renderEvent(ev *event, apiVersion string, pending int) obj {
	data := obj{"object": ev.Object}
	if ev.PreviousAttributes != nil {
		data["previous_attributes"] = ev.PreviousAttributes
	}
	var req any
	if ev.RequestID != "" {
		r := obj{"id": ev.RequestID, "idempotency_key": nil}
		if ev.IdempotencyKey != "" {
			r["idempotency_key"] = ev.IdempotencyKey
		}
		req = r
	}
	return obj{"id": ev.ID, "object": "event", "api_version": apiVersion, "created": ev.Created, "data": data,
		"livemode": s.live, "pending_webhooks": pending, "request": req, "type": ev.Type}
}

func (c *call) getEvent() (any, *apiError) {
	c.f.unknown(c.form)
	ev, ok := c.st.eventsByID[c.id]
	if !ok {
		return nil, noSuch("event", "id", c.id)
	}
	return c.st.renderEvent(ev, apiVersion, 0), nil
}

func (c *call) listEvents() (any, *apiError) {
	c.listParams("type", "types", "delivery_success")
	typ, hasType := c.f.str(c.form, "type")
	types := map[string]bool{}
	for _, n := range c.form.get("types").list() {
		if n.value != nil {
			types[*n.value] = true
		}
	}
	var objs []*event
	for _, ev := range c.st.events {
		if (hasType && !typeMatches(typ, ev.Type)) || (len(types) > 0 && !types[ev.Type]) {
			continue
		}
		objs = append(objs, ev)
	}
	return list(c, "/v1/events", objs, func(ev *event) obj { return c.st.renderEvent(ev, apiVersion, 0) }), nil
}

// typeMatches supports Stripe's wildcard filters such as customer.* .
func typeMatches(pattern, typ string) bool {
	if pattern == "*" || pattern == typ {
		return true
	}
	if n := len(pattern); n > 2 && pattern[n-2:] == ".*" {
		return len(typ) > n-2 && typ[:n-1] == pattern[:n-1]
	}
	return false
}

// apiVersion is the version the simulator renders, stripe-go v76's.
const apiVersion = "2023-10-16"

// EventObjects returns a copy of the data.object of every event stored so far, in every account (for validating
// them against Stripe's schema at the end of a test suite). Reset forgets them.
func (s *Sim) EventObjects() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, st := range s.stores {
		for _, ev := range st.events {
			out = append(out, normalize(ev.Object))
		}
	}
	return out
}
