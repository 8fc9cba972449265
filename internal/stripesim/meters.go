package stripesim

import (
	"strconv"
)

// Billing meters and meter events. A meter aggregates the meter events named by its event_name into a customer's
// usage over a billing period (sum or count of the events' values; last: the last value); a metered price on the
// meter bills that usage in arrears, on the invoice that closes the period. Stripe lets only a meter's display name
// change; a meter cannot be deleted, only deactivated (it then refuses meter events) and reactivated. An event_name
// belongs to one meter of the account. Meters carry no metadata. The shapes follow Stripe's later specification
// (billing meters are not in 2023-10-16's), which stripe-go v76.25.0 decodes.

type meter struct {
	meta
	DisplayName   string `json:"display_name"`
	EventName     string `json:"event_name"`
	Formula       string `json:"formula"`
	CustomerKey   string `json:"customer_key"`
	ValueKey      string `json:"value_key"`
	Status        string `json:"status"`
	DeactivatedAt *int64 `json:"deactivated_at"`
	Updated       int64  `json:"updated"`
}

// meterEvent is one recorded usage event, resolved to its customer and value at ingestion.
type meterEvent struct {
	EventName  string            `json:"event_name"`
	Identifier string            `json:"identifier"`
	Payload    map[string]string `json:"payload"`
	Customer   string            `json:"customer"`
	Value      int64             `json:"value"`
	Timestamp  int64             `json:"timestamp"`
	Created    int64             `json:"created"`
}

// meterEventWindow is how far back a meter event's timestamp may be (35 days), and meterEventAhead how far ahead
// (5 minutes), as Stripe documents.
const (
	meterEventWindow = 35 * 86400
	meterEventAhead  = 5 * 60
)

func (s *store) renderMeter(m *meter) obj {
	return obj{"id": m.ID, "object": "billing.meter", "created": m.Created,
		"customer_mapping":    obj{"event_payload_key": m.CustomerKey, "type": "by_id"},
		"default_aggregation": obj{"formula": m.Formula}, "display_name": m.DisplayName, "event_name": m.EventName,
		"event_time_window": nil, "livemode": s.live, "status": m.Status,
		"status_transitions": obj{"deactivated_at": m.DeactivatedAt}, "updated": m.Updated,
		"value_settings": obj{"event_payload_key": m.ValueKey}}
}

// meterDisplayName checks a display name as Stripe does.
func (c *call) meterDisplayName(m *meter) {
	if v, ok := c.f.str(c.form, "display_name"); ok {
		switch {
		case v == "":
			c.f.fail("display_name", "You must provide a non-empty display_name.")
		case len(v) > 250:
			c.f.fail("display_name", "Invalid display_name: must be at most 250 characters")
		}
		m.DisplayName = v
	}
}

func (c *call) createMeter() (any, *apiError) {
	f, p := &c.f, c.form
	f.unknown(p, "customer_mapping", "default_aggregation", "display_name", "event_name", "event_time_window",
		"value_settings")
	if f.err != nil {
		return nil, f.err
	}
	for _, req := range []string{"default_aggregation", "display_name", "event_name"} {
		if p.get(req) == nil {
			return nil, missingParam(req)
		}
	}
	m := &meter{meta: c.nextMeta("mtr"), Status: "active", CustomerKey: "stripe_customer_id", ValueKey: "value"}
	m.Updated = m.Created
	defer func() {
		if f.err != nil {
			c.st.seq--
		}
	}()
	c.meterDisplayName(m)
	name, _ := f.str(p, "event_name")
	switch {
	case name == "":
		f.fail("event_name", "You must provide a non-empty event_name.")
	case len(name) > 100:
		f.fail("event_name", "Invalid event_name: must be at most 100 characters")
	}
	m.EventName = name
	agg := p.get("default_aggregation")
	f.unknownIn(agg, "default_aggregation", "formula")
	formula, ok := f.enum(agg, "formula", "count", "last", "sum")
	if !ok && f.err == nil {
		return nil, missingParam("default_aggregation[formula]")
	}
	m.Formula = formula
	if cm := p.get("customer_mapping"); cm != nil {
		f.unknownIn(cm, "customer_mapping", "event_payload_key", "type")
		key, ok := f.str(cm, "event_payload_key")
		if !ok && f.err == nil {
			return nil, missingParam("customer_mapping[event_payload_key]")
		}
		if _, ok := f.enum(cm, "type", "by_id"); !ok && f.err == nil {
			return nil, missingParam("customer_mapping[type]")
		}
		if len(key) > 100 {
			f.fail("customer_mapping[event_payload_key]", "Invalid event_payload_key: must be at most 100 characters")
		}
		m.CustomerKey = key
	}
	if vs := p.get("value_settings"); vs != nil {
		f.unknownIn(vs, "value_settings", "event_payload_key")
		key, ok := f.str(vs, "event_payload_key")
		if !ok && f.err == nil {
			return nil, missingParam("value_settings[event_payload_key]")
		}
		if len(key) > 100 {
			f.fail("value_settings[event_payload_key]", "Invalid event_payload_key: must be at most 100 characters")
		}
		m.ValueKey = key
	}
	if v, ok := f.enum(p, "event_time_window", "day", "hour"); ok && v != "" {
		f.fail("event_time_window", "Pre-aggregated meter events (event_time_window) are not supported by stripesim.")
	}
	if f.err != nil {
		return nil, f.err
	}
	if other := c.st.meterByEventName(name); other != nil {
		f.err = &apiError{Status: 400, Type: typeInvalidRequest, Code: codeResourceExists, Param: "event_name",
			Message: "A meter with event_name `" + name + "` already exists (`" + other.ID + "`). An event name can " +
				"be used with only one meter."}
		return nil, f.err
	}
	c.st.meters[m.ID] = m
	out := c.st.renderMeter(m)
	c.emit("billing.meter.created", out, nil)
	return out, nil
}

// meterByEventName is the account's meter of an event name, active or not, or nil.
func (s *store) meterByEventName(name string) *meter {
	for _, m := range s.meters {
		if m.EventName == name {
			return m
		}
	}
	return nil
}

func (c *call) meter() (*meter, *apiError) {
	m, ok := c.st.meters[c.id]
	if !ok {
		return nil, noSuch("billing.meter", "id", c.id)
	}
	return m, nil
}

func (c *call) getMeter() (any, *apiError) {
	if c.f.unknown(c.form); c.f.err != nil {
		return nil, c.f.err
	}
	m, err := c.meter()
	if err != nil {
		return nil, err
	}
	return c.st.renderMeter(m), nil
}

// updateMeter changes the display name, the only field Stripe lets change: any other is an unknown parameter.
func (c *call) updateMeter() (any, *apiError) {
	if c.f.unknown(c.form, "display_name"); c.f.err != nil {
		return nil, c.f.err
	}
	m, err := c.meter()
	if err != nil {
		return nil, err
	}
	next := *m
	c.meterDisplayName(&next)
	if c.f.err != nil {
		return nil, c.f.err
	}
	before := c.st.renderMeter(m)
	next.Updated = c.now
	if next.DisplayName == m.DisplayName {
		next.Updated = m.Updated
	}
	*m = next
	out := c.st.renderMeter(m)
	c.emitUpdate("billing.meter.updated", before, out)
	return out, nil
}

// setMeterStatus deactivates or reactivates a meter; Stripe refuses a change to the status it already has.
func (c *call) setMeterStatus(status, event string) (any, *apiError) {
	if c.f.unknown(c.form); c.f.err != nil {
		return nil, c.f.err
	}
	m, err := c.meter()
	if err != nil {
		return nil, err
	}
	if m.Status == status {
		return nil, invalidRequest("This meter is already " + status + ".")
	}
	m.Status, m.Updated = status, c.now
	m.DeactivatedAt = nil
	if status == "inactive" {
		now := c.now
		m.DeactivatedAt = &now
	}
	out := c.st.renderMeter(m)
	c.emit(event, out, nil)
	return out, nil
}

func (c *call) deactivateMeter() (any, *apiError) {
	return c.setMeterStatus("inactive", "billing.meter.deactivated")
}

func (c *call) reactivateMeter() (any, *apiError) {
	return c.setMeterStatus("active", "billing.meter.reactivated")
}

func (c *call) listMeters() (any, *apiError) {
	c.listParams("status")
	status, hasStatus := c.f.enum(c.form, "status", "active", "inactive")
	if c.f.err != nil {
		return nil, c.f.err
	}
	var objs []*meter
	for _, m := range c.st.meters {
		if !hasStatus || m.Status == status {
			objs = append(objs, m)
		}
	}
	return list(c, "/v1/billing/meters", objs, c.st.renderMeter), nil
}

// createMeterEvent records usage: the event's meter is the one of its event_name, which must be active; its payload
// names the customer (the meter's customer mapping key) and, unless the meter counts, a whole-number value (the
// meter's value key). An identifier is unique per account. The timestamp defaults to now (the customer's test
// clock's time) and must be within the past 35 days or up to 5 minutes ahead.
func (c *call) createMeterEvent() (any, *apiError) {
	f, p := &c.f, c.form
	f.unknown(p, "event_name", "identifier", "payload", "timestamp")
	if f.err != nil {
		return nil, f.err
	}
	for _, req := range []string{"event_name", "payload"} {
		if p.get(req) == nil {
			return nil, missingParam(req)
		}
	}
	name, _ := f.str(p, "event_name")
	m := c.st.meterByEventName(name)
	switch {
	case m == nil:
		return nil, invalidParam("event_name", "No active meter was found for event_name `"+name+"`.")
	case m.Status != "active":
		return nil, invalidParam("event_name", "The meter `"+m.ID+"` for event_name `"+name+"` is inactive. "+
			"Reactivate it to record meter events.")
	}
	ev := &meterEvent{EventName: name, Payload: map[string]string{}, Created: c.now}
	pl := p.get("payload")
	for _, k := range pl.order {
		if v := pl.children[k].value; v != nil {
			ev.Payload[k] = *v
		} else {
			return nil, invalidParam("payload["+k+"]", "Invalid payload value: nested objects are not supported")
		}
	}
	ev.Customer = ev.Payload[m.CustomerKey]
	cu := c.st.customers[ev.Customer]
	switch {
	case ev.Customer == "":
		return nil, invalidParam("payload", "Missing the customer mapping key `"+m.CustomerKey+"` in payload.")
	case cu == nil || cu.Deleted:
		return nil, noSuch("customer", "payload["+m.CustomerKey+"]", ev.Customer)
	}
	ev.Value = 1
	if m.Formula != "count" {
		raw, ok := ev.Payload[m.ValueKey]
		if !ok {
			return nil, invalidParam("payload", "Missing the value key `"+m.ValueKey+"` in payload.")
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return nil, invalidParam("payload["+m.ValueKey+"]", "The value `"+raw+"` of payload key `"+
				m.ValueKey+"` must be a whole number.")
		}
		ev.Value = n
	}
	now := c.st.clockTime(ev.Customer, c.now)
	ev.Timestamp = now
	if ts, ok := f.integer(p, "timestamp"); ok {
		if ts < now-meterEventWindow || ts > now+meterEventAhead {
			f.fail("timestamp", "Timestamp must be within the past 35 calendar days or up to 5 minutes in the "+
				"future.")
		}
		ev.Timestamp = ts
	}
	if f.err != nil {
		return nil, f.err
	}
	if v, ok := f.str(p, "identifier"); ok && v != "" {
		if len(v) > 100 {
			return nil, invalidParam("identifier", "Invalid identifier: must be at most 100 characters")
		}
		ev.Identifier = v
	} else {
		ev.Identifier = c.sim.newID("mev")
	}
	if c.st.meterEventIDs[ev.Identifier] {
		return nil, &apiError{Status: 400, Type: typeInvalidRequest, Code: codeResourceExists, Param: "identifier",
			Message: "An event already exists with identifier " + ev.Identifier + "."}
	}
	c.st.meterEventIDs[ev.Identifier] = true
	c.st.meterEvents = append(c.st.meterEvents, ev)
	return obj{"object": "billing.meter_event", "created": ev.Created, "event_name": ev.EventName,
		"identifier": ev.Identifier, "livemode": c.st.live, "payload": ev.Payload, "timestamp": ev.Timestamp}, nil
}

// usage aggregates a meter's events of a customer with timestamps in [from, to) by the meter's formula.
func (s *store) usage(meterID, customer string, from, to int64) int64 {
	m := s.meters[meterID]
	if m == nil {
		return 0
	}
	var total, last, lastAt int64
	for _, ev := range s.meterEvents {
		if ev.EventName != m.EventName || ev.Customer != customer || ev.Timestamp < from || ev.Timestamp >= to {
			continue
		}
		total += ev.Value
		if ev.Timestamp >= lastAt {
			last, lastAt = ev.Value, ev.Timestamp
		}
	}
	if m.Formula == "last" {
		return last
	}
	// Stripe bills no negative usage: a period whose adjustments outweigh its usage bills 0.
	return max(total, 0)
}

// priceMeter reads recurring[meter] of a price create: a metered price may bill a meter, which must exist and be
// active; a licensed price takes none.
func (c *call) priceMeter(rec *param, r *recurring) {
	id, ok := c.f.str(rec, "meter")
	if !ok || c.f.err != nil {
		return
	}
	m := c.st.meters[id]
	switch {
	case r.UsageType != "metered":
		c.f.fail("recurring[meter]", "A meter can only be set on a price with `recurring[usage_type]=metered`.")
	case m == nil:
		c.f.err = noSuch("billing.meter", "recurring[meter]", id)
	case m.Status != "active":
		c.f.fail("recurring[meter]", "The meter `%s` is inactive. Reactivate it to attach it to a price.", id)
	}
	r.Meter = id
}

// meteredItem says whether a subscription item's price is metered, and refuses a quantity on it as Stripe does:
// a metered item bills its meter's usage.
func (c *call) meteredItem(pr *price, prefix string, hasQuantity bool) bool {
	if pr == nil || pr.Recurring == nil || pr.Recurring.UsageType != "metered" {
		return false
	}
	if hasQuantity {
		c.f.fail(prefix+"[quantity]", "Quantity should not be specified where usage_type is `metered`. Remove "+
			"quantity from `%s`.", prefix)
	}
	return true
}
