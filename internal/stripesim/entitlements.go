package stripesim

import (
	"maps"
	"net/http"
	"slices"
	"strings"
)

// Entitlements: features (entitlements.feature), their attachment to products (product_feature), and the active
// entitlements Stripe computes from them. A customer is entitled to the features attached to the products of the
// prices of its subscriptions that grant access: active, trialing and past_due (a past_due subscription is still
// collecting, and keeps its access until it is canceled, made unpaid or paused). Whenever that set of a customer
// changes (a subscription created, updated, canceled, renewed into another state; features attached to or
// detached from a product), Stripe sends entitlements.active_entitlement_summary.updated with the customer's whole
// set. Features cannot be deleted, only archived (active=false): an archived feature cannot be newly attached and is
// not listed, but a product it is attached to keeps granting it.
//
// These objects are newer than API version 2023-10-16: their shapes follow Stripe's later specification (see
// schemacheck's later-spec objects), as stripe-go v76.25.0 decodes them.

type feature struct {
	meta
	Name      string `json:"name"`
	LookupKey string `json:"lookup_key"`
	Active    bool   `json:"active"`
}

type productFeature struct {
	meta
	Product string `json:"product"`
	Feature string `json:"feature"`
}

// grantingStatuses are the subscription states whose products' features the customer is entitled to.
var grantingStatuses = []string{"active", "trialing", "past_due"}

func (s *store) renderFeature(f *feature) obj {
	return obj{"id": f.ID, "object": "entitlements.feature", "active": f.Active, "livemode": s.live,
		"lookup_key": f.LookupKey, "metadata": metadataJSON(f.Metadata), "name": f.Name}
}

func (s *store) renderProductFeature(pf *productFeature) obj {
	return obj{"id": pf.ID, "object": "product_feature", "livemode": s.live,
		"entitlement_feature": s.renderFeature(s.features[pf.Feature])}
}

// featureFields applies name and metadata, which create and update share.
func (c *call) featureFields(f *feature) {
	fr, p := &c.f, c.form
	if v, ok := fr.str(p, "name"); ok {
		switch {
		case v == "":
			fr.fail("name", "You must provide a non-empty name.")
		case len(v) > 80:
			fr.fail("name", "Invalid name: must be at most 80 characters")
		}
		f.Name = v
	}
	f.Metadata = fr.metadata(p, f.Metadata)
}

func (c *call) createFeature() (any, *apiError) {
	fr, p := &c.f, c.form
	if fr.unknown(p, "name", "lookup_key", "metadata"); fr.err != nil {
		return nil, fr.err
	}
	for _, req := range []string{"lookup_key", "name"} {
		if p.get(req) == nil {
			return nil, missingParam(req)
		}
	}
	key, _ := fr.str(p, "lookup_key")
	switch {
	case key == "":
		return nil, invalidParam("lookup_key", "You must provide a non-empty lookup_key.")
	case len(key) > 80:
		return nil, invalidParam("lookup_key", "Invalid lookup_key: must be at most 80 characters")
	}
	for _, other := range c.st.features {
		if other.LookupKey == key {
			return nil, &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Code: codeResourceExists,
				Param: "lookup_key", Message: "A feature (`" + other.ID + "`) already uses that lookup key."}
		}
	}
	f := &feature{meta: c.nextMeta("feat"), LookupKey: key, Active: true}
	c.featureFields(f)
	if fr.err != nil {
		c.st.seq--
		return nil, fr.err
	}
	c.st.features[f.ID] = f
	return c.st.renderFeature(f), nil
}

func (c *call) feature() (*feature, *apiError) {
	f, ok := c.st.features[c.id]
	if !ok {
		return nil, noSuch("feature", "id", c.id)
	}
	return f, nil
}

func (c *call) getFeature() (any, *apiError) {
	c.f.unknown(c.form)
	f, err := c.feature()
	if err != nil {
		return nil, err
	}
	return c.st.renderFeature(f), nil
}

// updateFeature changes name, metadata and active; the lookup key cannot change (an unknown parameter, as Stripe
// answers).
func (c *call) updateFeature() (any, *apiError) {
	if c.f.unknown(c.form, "name", "metadata", "active"); c.f.err != nil {
		return nil, c.f.err
	}
	f, err := c.feature()
	if err != nil {
		return nil, err
	}
	next := *f
	c.featureFields(&next)
	if v, ok := c.f.boolean(c.form, "active"); ok {
		next.Active = v
	}
	if c.f.err != nil {
		return nil, c.f.err
	}
	*f = next
	return c.st.renderFeature(f), nil
}

// listFeatures lists the active features (archived ones with archived=true), optionally by lookup key.
func (c *call) listFeatures() (any, *apiError) {
	c.listParams("archived", "lookup_key")
	archived, _ := c.f.boolean(c.form, "archived")
	key, byKey := c.f.str(c.form, "lookup_key")
	var objs []*feature
	for _, f := range c.st.features {
		if f.Active == archived || (byKey && f.LookupKey != key) {
			continue
		}
		objs = append(objs, f)
	}
	return list(c, "/v1/entitlements/features", objs, c.st.renderFeature), nil
}

// productOfPath is the product a /v1/products/{product}/features request names.
func (c *call) productOfPath() (*product, *apiError) {
	pr, ok := c.st.products[c.pathProduct]
	if !ok || pr.Deleted {
		return nil, noSuch("product", "product", c.pathProduct)
	}
	return pr, nil
}

// attachFeature attaches a feature to a product: an archived feature, or one attached already, is refused.
func (c *call) attachFeature() (any, *apiError) {
	fr, p := &c.f, c.form
	if fr.unknown(p, "entitlement_feature"); fr.err != nil {
		return nil, fr.err
	}
	pr, err := c.productOfPath()
	if err != nil {
		return nil, err
	}
	id, ok := fr.str(p, "entitlement_feature")
	if !ok {
		return nil, missingParam("entitlement_feature")
	}
	f, exists := c.st.features[id]
	switch {
	case !exists:
		return nil, noSuch("feature", "entitlement_feature", id)
	case !f.Active:
		return nil, invalidParam("entitlement_feature", "The feature `"+id+"` is archived and cannot be "+
			"attached to a product.")
	}
	for _, pf := range c.st.productFeatures {
		if pf.Product == pr.ID && pf.Feature == id {
			return nil, &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Code: codeResourceExists,
				Param: "entitlement_feature", Message: "The feature `" + id + "` is already attached to the " +
					"product `" + pr.ID + "` (`" + pf.ID + "`)."}
		}
	}
	pf := &productFeature{meta: c.nextMeta("prodft"), Product: pr.ID, Feature: id}
	c.st.productFeatures[pf.ID] = pf
	c.entitlementsMayChange(pr.ID)
	return c.st.renderProductFeature(pf), nil
}

func (c *call) productFeature() (*productFeature, *apiError) {
	pr, err := c.productOfPath()
	if err != nil {
		return nil, err
	}
	pf, ok := c.st.productFeatures[c.id]
	if !ok || pf.Product != pr.ID {
		return nil, noSuch("product_feature", "id", c.id)
	}
	return pf, nil
}

func (c *call) getProductFeature() (any, *apiError) {
	c.f.unknown(c.form)
	pf, err := c.productFeature()
	if err != nil {
		return nil, err
	}
	return c.st.renderProductFeature(pf), nil
}

func (c *call) detachFeature() (any, *apiError) {
	c.f.unknown(c.form)
	pf, err := c.productFeature()
	if err != nil {
		return nil, err
	}
	delete(c.st.productFeatures, pf.ID)
	c.entitlementsMayChange(pf.Product)
	return obj{"id": pf.ID, "object": "product_feature", "deleted": true}, nil
}

func (c *call) listProductFeatures() (any, *apiError) {
	c.listParams()
	pr, err := c.productOfPath()
	if err != nil {
		return nil, err
	}
	var objs []*productFeature
	for _, pf := range c.st.productFeatures {
		if pf.Product == pr.ID {
			objs = append(objs, pf)
		}
	}
	return list(c, "/v1/products/"+pr.ID+"/features", objs, c.st.renderProductFeature), nil
}

// activeEntitlement is one feature a customer is entitled to, for lists (its ID is stable per customer and
// feature, as Stripe's are while the entitlement lasts).
type activeEntitlement struct {
	meta
	feature *feature
}

// entitledFeatures are the features a customer is entitled to, by ID, oldest feature first.
func (s *store) entitledFeatures(customerID string) []*feature {
	seen := map[string]bool{}
	var out []*feature
	for _, sub := range s.subscriptions {
		if sub.Customer != customerID || !slices.Contains(grantingStatuses, sub.Status) {
			continue
		}
		for _, it := range sub.Items {
			pc := s.prices[it.Price]
			if pc == nil {
				continue
			}
			for _, pf := range s.productFeatures {
				if pf.Product == pc.Product && !seen[pf.Feature] {
					seen[pf.Feature] = true
					out = append(out, s.features[pf.Feature])
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b *feature) int { return int(a.Seq - b.Seq) })
	return out
}

func (s *store) activeEntitlements(customerID string) []*activeEntitlement {
	features := s.entitledFeatures(customerID)
	out := make([]*activeEntitlement, 0, len(features))
	for _, f := range features {
		out = append(out, &activeEntitlement{meta: meta{ID: "ent_" + f.ID[len("feat_"):] + "_" + customerID[len("cus_"):],
			Created: f.Created, Seq: f.Seq}, feature: f})
	}
	return out
}

func (s *store) renderActiveEntitlement(e *activeEntitlement) obj {
	return obj{"id": e.ID, "object": "entitlements.active_entitlement", "feature": e.feature.ID,
		"livemode": s.live, "lookup_key": e.feature.LookupKey}
}

// listActiveEntitlements lists a customer's active entitlements (customer is required).
func (c *call) listActiveEntitlements() (any, *apiError) {
	c.listParams("customer")
	id, ok := c.f.str(c.form, "customer")
	if !ok {
		return nil, missingParam("customer")
	}
	if cu, exists := c.st.customers[id]; !exists || cu.Deleted {
		return nil, noSuch("customer", "customer", id)
	}
	return list(c, "/v1/entitlements/active_entitlements", c.st.activeEntitlements(id),
		c.st.renderActiveEntitlement), nil
}

// entitlementsMayChange notes that the customers subscribed to product may have gained or lost features.
func (c *call) entitlementsMayChange(product string) {
	c.featureProducts = append(c.featureProducts, product)
}

// entitlementSummaries appends an entitlements.active_entitlement_summary.updated event for every customer whose
// entitled features the call changed: the customers of its subscription events and those subscribed to a product
// whose features it changed. It runs as the call's events are committed, so it sees the call's final state.
func (c *call) entitlementSummaries() {
	customers := map[string]int64{} // customer -> when its change happened
	for _, pe := range c.events {
		if strings.HasPrefix(pe.typ, "customer.subscription.") {
			if id, _ := pe.object["customer"].(string); id != "" {
				customers[id] = max(customers[id], pe.at)
			}
		}
	}
	for _, product := range c.featureProducts {
		for _, sub := range c.st.subscriptions {
			for _, it := range sub.Items {
				if pc := c.st.prices[it.Price]; pc != nil && pc.Product == product {
					customers[sub.Customer] = max(customers[sub.Customer], c.now)
				}
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(customers)) {
		features := c.st.entitledFeatures(id)
		ids := make([]string, 0, len(features))
		for _, f := range features {
			ids = append(ids, f.ID)
		}
		if slices.Equal(ids, c.st.entitled[id]) {
			continue
		}
		c.st.entitled[id] = ids
		ents := c.st.activeEntitlements(id)
		data := make([]any, 0, len(ents))
		for _, e := range ents {
			data = append(data, c.st.renderActiveEntitlement(e))
		}
		summary := obj{"object": "entitlements.active_entitlement_summary", "customer": id, "livemode": c.st.live,
			"entitlements": obj{"object": "list", "data": data, "has_more": false,
				"url": "/v1/customer/" + id + "/entitlements"}}
		c.events = append(c.events, pendingEvent{typ: "entitlements.active_entitlement_summary.updated",
			object: summary, at: customers[id]})
	}
}
