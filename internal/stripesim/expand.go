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
	v, ok := o[key]
	if !ok || key == "id" || key == "object" {
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
