package controllers

import (
	"context"
	"maps"
	"math"
	"strconv"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=taxrates,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=taxrates/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=taxrates/finalizers,verbs=update

const (
	kindTaxRate = "TaxRate"
	resTaxRate  = "tax_rate"
)

// taxRateExternal maps a TaxRate to a Stripe tax rate. Stripe tax rates are immutable in percentage and inclusive:
// a change to one of those rolls the tax rate to a successor, as a Price rolls.
type taxRateExternal struct {
	standalone[*billingv1.TaxRate]
}

func (taxRateExternal) Kind() string { return kindTaxRate }

// taxRateKind is the TaxRate's registry entry.
func taxRateKind() kindEntry {
	return entry(kindTaxRate, "tax_rate", resTaxRate, func() *billingv1.TaxRate { return &billingv1.TaxRate{} },
		func() *billingv1.TaxRateList { return &billingv1.TaxRateList{} },
		func(loopDeps) External[*billingv1.TaxRate] { return taxRateExternal{} },
		stripe.OpRetrieve, stripe.OpCreate, stripe.OpUpdate, stripe.OpList)
}

func (taxRateExternal) AdoptID(_ context.Context, _ *stripe.Client, obj *billingv1.TaxRate) (string, error) {
	if obj.Spec.Adopt == nil {
		return "", nil
	}
	return obj.Spec.Adopt.ID, nil
}

// taxRatePercentage is the spec's percentage as Stripe's number (the schema admits only decimals of 0 to 100).
func taxRatePercentage(spec *billingv1.TaxRateSpec) float64 {
	p, _ := strconv.ParseFloat(spec.Percentage, 64)
	return p
}

// taxRateImmutableDiff is what differs from the spec in cur's immutable fields, as "Stripe's->the spec's".
func taxRateImmutableDiff(spec *billingv1.TaxRateSpec, cur *stripego.TaxRate) map[string]string {
	diff := map[string]string{}
	// The spec has at most 4 decimals; Stripe answers with the number it stored.
	if math.Abs(cur.Percentage-taxRatePercentage(spec)) > 1e-9 {
		diff["percentage"] = strconv.FormatFloat(cur.Percentage, 'f', -1, 64) + "->" + spec.Percentage
	}
	if cur.Inclusive != spec.Inclusive {
		diff["inclusive"] = strconv.FormatBool(cur.Inclusive) + "->" + strconv.FormatBool(spec.Inclusive)
	}
	return diff
}

// taxRateParams renders the mutable fields that differ from cur (all set ones when cur is nil).
func taxRateParams(spec *billingv1.TaxRateSpec, stamp map[string]string, cur *stripego.TaxRate) (
	*stripego.TaxRateParams, map[string]string) {
	p := &stripego.TaxRateParams{}
	changed := map[string]string{}
	have := stripego.TaxRate{Active: true}
	if cur != nil {
		have = *cur
	}
	str := func(name, want, got string, set func(*string)) {
		if want != got {
			set(stripego.String(want))
			changed[name] = got + "->" + want
		}
	}
	str("display_name", spec.DisplayName, have.DisplayName, func(v *string) { p.DisplayName = v })
	str("country", spec.Country, have.Country, func(v *string) { p.Country = v })
	str("state", spec.State, have.State, func(v *string) { p.State = v })
	str("jurisdiction", spec.Jurisdiction, have.Jurisdiction, func(v *string) { p.Jurisdiction = v })
	str("description", spec.Description, have.Description, func(v *string) { p.Description = v })
	str("tax_type", string(spec.TaxType), string(have.TaxType), func(v *string) { p.TaxType = v })
	if active := spec.Active == nil || *spec.Active; active != have.Active {
		p.Active = stripego.Bool(active)
		changed["active"] = strconv.FormatBool(active)
	}
	metadataDiff(&p.Params, desiredMetadata(spec.Metadata, stamp), have.Metadata, cur == nil, changed)
	return p, changed
}

func getTaxRate(ctx context.Context, c *stripe.Client, id string, prio stripe.Priority) (*stripego.TaxRate, error) {
	p := &stripego.TaxRateParams{}
	return stripe.Call(ctx, c, stripe.Op{Resource: resTaxRate, Operation: stripe.OpRetrieve, Priority: prio},
		&p.Params, func() (*stripego.TaxRate, error) { return c.API.TaxRates.Get(id, p) })
}

func updateTaxRate(ctx context.Context, c *stripe.Client, id, key string, p *stripego.TaxRateParams) error {
	_, err := stripe.Call(ctx, c, stripe.Op{Resource: resTaxRate, Operation: stripe.OpUpdate, IdempotencyKey: key},
		&p.Params, func() (*stripego.TaxRate, error) { return c.API.TaxRates.Update(id, p) })
	return err
}

func (taxRateExternal) Observe(ctx context.Context, c *stripe.Client, obj *billingv1.TaxRate, id string,
	prio stripe.Priority, stamp map[string]string) (Observation, error) {
	cur, err := getTaxRate(ctx, c, id, prio)
	if stripe.IsNotFound(err) {
		return Observation{}, nil
	}
	if err != nil {
		return Observation{}, err
	}
	_, changed := taxRateParams(&obj.Spec, stamp, cur)
	if immutable := taxRateImmutableDiff(&obj.Spec, cur); len(immutable) > 0 {
		// The successor is created from the whole spec: every difference is part of the plan.
		maps.Copy(changed, immutable)
		return Observation{Exists: true, Replace: true, Current: cur, Drift: driftOf(changed)}, nil
	}
	return Observation{Exists: true, UpToDate: len(changed) == 0, Current: cur, Drift: driftOf(changed)}, nil
}

// Create creates the tax rate, or its successor when status.id still names the rate being replaced.
func (taxRateExternal) Create(ctx context.Context, c *stripe.Client, obj *billingv1.TaxRate, key string,
	stamp map[string]string) (string, error) {
	p, _ := taxRateParams(&obj.Spec, stamp, nil)
	p.Percentage = stripego.Float64(taxRatePercentage(&obj.Spec))
	p.Inclusive = stripego.Bool(obj.Spec.Inclusive)
	r, err := stripe.Call(ctx, c, stripe.Op{Resource: resTaxRate, Operation: stripe.OpCreate, IdempotencyKey: key},
		&p.Params, func() (*stripego.TaxRate, error) { return c.API.TaxRates.New(p) })
	if err != nil {
		return "", err
	}
	return r.ID, nil
}

func (taxRateExternal) Update(ctx context.Context, c *stripe.Client, obj *billingv1.TaxRate,
	stamp map[string]string, obs Observation) error {
	cur, err := observed(ctx, c, obj.Status.ID, obs, getTaxRate)
	if err != nil {
		return err
	}
	p, changed := taxRateParams(&obj.Spec, stamp, cur)
	if len(changed) == 0 {
		return nil
	}
	return updateTaxRate(ctx, c, obj.Status.ID, updateKey(obj, changed), p)
}

func (taxRateExternal) Find(ctx context.Context, c *stripe.Client, obj *billingv1.TaxRate,
	since time.Time) (string, error) {
	p := &stripego.TaxRateListParams{CreatedRange: &stripego.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	exclude := append([]string{obj.Status.ID}, obj.Status.PreviousIDs...)
	page := func() ([]stripeObject, bool, error) {
		it := c.API.TaxRates.List(p)
		if err := it.Err(); err != nil {
			return nil, false, err
		}
		l := it.TaxRateList()
		objs := make([]stripeObject, 0, len(l.Data))
		for _, r := range l.Data {
			objs = append(objs, stripeObject{ID: r.ID, Metadata: r.Metadata})
		}
		return objs, l.HasMore, nil
	}
	return findByUID(ctx, c, resTaxRate, &p.ListParams, string(obj.UID), exclude, page)
}

// Replaced finishes a roll: the old tax rate is archived and recorded in status.previousIDs. Subscriptions that
// reference the TaxRate see its new ID and move to it (subscriptionExternal.Stale).
func (taxRateExternal) Replaced(ctx context.Context, c *stripe.Client, obj *billingv1.TaxRate, oldID,
	_ string) error {
	key := stripe.IdempotencyKey(string(obj.UID), "archive-"+oldID, obj.Generation)
	if err := updateTaxRate(ctx, c, oldID, key, &stripego.TaxRateParams{Active: stripego.Bool(false)}); err != nil &&
		!stripe.IsNotFound(err) {
		return err
	}
	obj.Status.PreviousIDs = withPrevious(obj.Status.PreviousIDs, oldID)
	return nil
}

// Delete archives the tax rate (Archive; Stripe cannot delete one) or leaves it (Orphan).
func (taxRateExternal) Delete(ctx context.Context, c *stripe.Client, obj *billingv1.TaxRate) error {
	if obj.Spec.DeletionPolicy == billingv1.Orphan {
		return nil
	}
	key := stripe.IdempotencyKey(string(obj.UID), "archive", obj.Generation)
	return updateTaxRate(ctx, c, obj.Status.ID, key, &stripego.TaxRateParams{Active: stripego.Bool(false)})
}
