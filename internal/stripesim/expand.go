package stripesim

import (
	"maps"
	"slices"
	"strings"
)

// Expansion: expand[] names fields holding an ID, which the response then holds as the object, down to four levels
// (latest_invoice.payment_intent.latest_charge...); a list's objects are expanded through data
// (data.latest_invoice). It applies to every object and list the API returns; events are never expanded.

// maxExpandDepth is how many levels Stripe expands.
const maxExpandDepth = 4

// expandableFields are the fields expand[] may name on each object stripesim renders, by the object's "object"
// value: the spec's x-expandableFields for 2023-10-16 (TestExpandableFieldsAreTheSpecs holds them to it). A name
// not listed (metadata, currency, a field that does not exist) is refused as Stripe refuses it. A listed field
// that holds an ID is expanded; a listed nested object (recurring, invoice_settings) is left as it is; a listed
// field Stripe leaves out unless asked for (a price's tiers and currency_options) is included.
var expandableFields = map[string][]string{
	"charge": {"application", "application_fee", "balance_transaction", "billing_details", "customer",
		"failure_balance_transaction", "fraud_details", "invoice", "on_behalf_of", "outcome", "payment_intent",
		"payment_method_details", "radar_options", "refunds", "review", "shipping", "source_transfer", "transfer",
		"transfer_data"},
	"coupon": {"applies_to", "currency_options"},
	"customer": {"address", "cash_balance", "default_source", "discount", "invoice_settings", "shipping",
		"sources", "subscriptions", "tax", "tax_ids", "test_clock"},
	"discount": {"coupon", "customer", "promotion_code"},
	"dispute": {"balance_transactions", "charge", "evidence", "evidence_details", "payment_intent",
		"payment_method_details"},
	"event": {"data", "request"},
	"invoice": {"account_tax_ids", "application", "automatic_tax", "charge", "custom_fields", "customer",
		"customer_address", "customer_shipping", "customer_tax_ids", "default_payment_method", "default_source",
		"default_tax_rates", "discount", "discounts", "from_invoice", "issuer", "last_finalization_error",
		"latest_revision", "lines", "on_behalf_of", "payment_intent", "payment_settings", "quote", "rendering",
		"shipping_cost", "shipping_details", "status_transitions", "subscription", "subscription_details",
		"test_clock", "threshold_reason", "total_discount_amounts", "total_tax_amounts", "transfer_data"},
	"line_item": {"discount_amounts", "discounts", "invoice_item", "period", "price", "proration_details",
		"subscription", "subscription_item", "tax_amounts", "tax_rates"},
	"payment_intent": {"amount_details", "application", "automatic_payment_methods", "customer", "invoice",
		"last_payment_error", "latest_charge", "next_action", "on_behalf_of", "payment_method",
		"payment_method_configuration_details", "payment_method_options", "processing", "review", "shipping",
		"transfer_data"},
	"payment_method": {"acss_debit", "affirm", "afterpay_clearpay", "alipay", "au_becs_debit", "bacs_debit",
		"bancontact", "billing_details", "blik", "boleto", "card", "card_present", "cashapp", "customer",
		"customer_balance", "eps", "fpx", "giropay", "grabpay", "ideal", "interac_present", "klarna", "konbini",
		"link", "oxxo", "p24", "paynow", "paypal", "pix", "promptpay", "radar_options", "revolut_pay",
		"sepa_debit", "sofort", "swish", "us_bank_account", "wechat_pay", "zip"},
	"price":          {"currency_options", "custom_unit_amount", "product", "recurring", "tiers", "transform_quantity"},
	"product":        {"default_price", "features", "package_dimensions", "tax_code"},
	"promotion_code": {"coupon", "customer", "restrictions"},
	"subscription": {"application", "automatic_tax", "billing_cycle_anchor_config", "billing_thresholds",
		"cancellation_details", "customer", "default_payment_method", "default_source", "default_tax_rates",
		"discount", "items", "latest_invoice", "on_behalf_of", "pause_collection", "payment_settings",
		"pending_invoice_item_interval", "pending_setup_intent", "pending_update", "schedule", "test_clock",
		"transfer_data", "trial_settings"},
	"subscription_item":       {"billing_thresholds", "price", "tax_rates"},
	"tax_id":                  {"customer", "owner", "verification"},
	"tax_rate":                {},
	"test_helpers.test_clock": {},
	"webhook_endpoint":        {},
	// A customer portal configuration's nested hashes are expandable fields in the spec.
	"billing_portal.configuration": {"application", "business_profile", "features", "login_page"},
	// A list's and a search result's objects are reached through data.
	"list":          {"data"},
	"search_result": {"data"},
}

// expandable reports whether expand[] may name key on o. An object without an "object" field (a nested hash such
// as a customer's invoice_settings) is not checked: the spec's lists cover resources only.
func expandable(o obj, key string) bool {
	kind, ok := o["object"].(string)
	if !ok {
		return true
	}
	fields, known := expandableFields[kind]
	return !known || slices.Contains(fields, key)
}

// resourceObject is the object a route's resource (as routes names it) returns.
func resourceObject(resource string) string {
	switch resource {
	case "test_clock":
		return "test_helpers.test_clock"
	case "customer_portal":
		return "billing_portal.configuration"
	}
	return resource
}

// checkExpandTop refuses, before a handler runs, an expand[] path whose first field kind does not let be
// expanded ("" checks nothing).
func checkExpandTop(kind string, expand map[string]bool) *apiError {
	if kind == "" {
		return nil
	}
	for _, p := range slices.Sorted(maps.Keys(expand)) {
		top, _, _ := strings.Cut(p, ".")
		if !expandable(obj{"object": kind}, top) {
			return cannotExpand(p)
		}
	}
	return nil
}

// included renders a field Stripe leaves out of an object unless expand[] names it: a price's tiers (none: every
// price stripesim makes is per_unit) and currency_options (the price's own currency, as Stripe lists it), and a
// coupon's applies_to.
func (s *store) included(o obj, key string) (any, bool) {
	if o["object"] == "coupon" && key == "applies_to" {
		id, _ := o["id"].(string)
		if cp := s.coupons[id]; cp != nil {
			return obj{"products": append([]string{}, cp.AppliesTo...)}, true
		}
		return nil, false
	}
	if o["object"] != "price" {
		return nil, false
	}
	switch key {
	case "tiers":
		return []any{}, true
	case "currency_options":
		cur, _ := o["currency"].(string)
		return obj{cur: obj{"custom_unit_amount": nil, "tax_behavior": o["tax_behavior"],
			"unit_amount": o["unit_amount"], "unit_amount_decimal": o["unit_amount_decimal"]}}, true
	}
	return nil, false
}

// renderByID renders the object an ID names, for expansion.
func (s *store) renderByID(id string) (obj, bool) {
	prefix, _, _ := strings.Cut(id, "_")
	switch prefix {
	case "cus":
		if o := s.customers[id]; o != nil {
			return s.renderCustomer(o), true
		}
	case "prod":
		if o := s.products[id]; o != nil {
			return s.renderProduct(o), true
		}
	case "price":
		if o := s.prices[id]; o != nil {
			return s.renderPrice(o), true
		}
	case "sub":
		if o := s.subscriptions[id]; o != nil {
			return s.renderSubscription(o, nil), true
		}
	case "in":
		if o := s.invoices[id]; o != nil {
			return s.renderInvoice(o), true
		}
	case "pi":
		if o := s.intents[id]; o != nil {
			return s.renderPaymentIntent(o), true
		}
	case "ch":
		if o := s.charges[id]; o != nil {
			return s.renderCharge(o), true
		}
	case "dp":
		if o := s.disputes[id]; o != nil {
			return s.renderDispute(o), true
		}
	case "pm":
		if o := s.paymentMethods[id]; o != nil {
			return s.renderPaymentMethod(o), true
		}
		if isTestToken(id) { // a default kept as the token it was sent as (without StrictPaymentMethods)
			return s.renderPaymentMethod(&paymentMethod{meta: meta{ID: id}, Token: id}), true
		}
	case "clock":
		if o := s.clocks[id]; o != nil {
			return s.renderClock(o), true
		}
	case "txr":
		if o := s.taxRates[id]; o != nil {
			return s.renderTaxRate(o), true
		}
	}
	return nil, false
}

// expandResponse applies the request's expand[] paths to a rendered response. It copies what it changes: the
// rendered maps may also be an event's object.
func (c *call) expandResponse(res any) (any, *apiError) {
	o, ok := res.(obj)
	if !ok || len(c.expand) == 0 {
		return res, nil
	}
	paths := slices.Sorted(maps.Keys(c.expand)) // a path sorts before the paths that extend it
	for _, p := range paths {
		segs := strings.Split(p, ".")
		depth := len(segs)
		if o["object"] == "list" || o["object"] == "search_result" {
			depth-- // data. does not count
		}
		if depth > maxExpandDepth {
			return nil, invalidParam("expand", "You cannot expand more than 4 levels of a property. Property: "+p)
		}
		var err *apiError
		if o, err = c.st.expandPath(o, segs, p); err != nil {
			return nil, err
		}
	}
	return o, nil
}

func cannotExpand(path string) *apiError {
	return invalidParam("expand", "This property cannot be expanded ("+path+").")
}

// expandPath expands segs in o, returning a copy of o.
func (s *store) expandPath(o obj, segs []string, full string) (obj, *apiError) {
	key := segs[0]
	if !expandable(o, key) {
		return nil, cannotExpand(full)
	}
	v, ok := o[key]
	if !ok && o["deleted"] == true {
		return o, nil // a deleted object is answered as it is
	}
	if !ok {
		inc, isIncluded := s.included(o, key)
		if id, _ := o["id"].(string); o["object"] == "customer" && key == "tax_ids" {
			// A customer's tax IDs are listed only when asked for.
			data := make([]any, 0)
			for _, t := range s.taxIDsOf(id) {
				data = append(data, s.renderTaxID(t))
			}
			inc, isIncluded = obj{"object": "list", "data": data, "has_more": false,
				"url": "/v1/customers/" + id + "/tax_ids"}, true
		}
		if !isIncluded || len(segs) > 1 {
			return nil, cannotExpand(full)
		}
		out := maps.Clone(o)
		out[key] = inc
		return out, nil
	}
	if key == "id" || key == "object" {
		return nil, cannotExpand(full)
	}
	if p, isPtr := v.(*string); isPtr { // rendered optional IDs are *string
		v = nil
		if p != nil {
			v = *p
		}
	}
	if id, isID := v.(string); isID {
		r, found := s.renderByID(id)
		if !found {
			return nil, cannotExpand(full)
		}
		v = r
	}
	out := maps.Clone(o)
	out[key] = v
	if len(segs) == 1 {
		if _, isObj := v.(obj); !isObj && v != nil {
			return nil, cannotExpand(full)
		}
		return out, nil
	}
	switch x := v.(type) {
	case nil:
	case obj:
		r, err := s.expandPath(x, segs[1:], full)
		if err != nil {
			return nil, err
		}
		out[key] = r
	case []any:
		arr := make([]any, len(x))
		for i, e := range x {
			eo, isObj := e.(obj)
			if !isObj {
				return nil, cannotExpand(full)
			}
			r, err := s.expandPath(eo, segs[1:], full)
			if err != nil {
				return nil, err
			}
			arr[i] = r
		}
		out[key] = arr
	default:
		return nil, cannotExpand(full)
	}
	return out, nil
}
