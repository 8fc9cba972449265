package controllers

import (
	"context"
	"slices"
	"strconv"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=products,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=products/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=products/finalizers,verbs=update

const resProduct = "product"

// productExternal maps a Product to a Stripe product, and its features to Stripe's product features.
type productExternal struct {
	never[*billingv1.Product]
	refs refResolver
}

func (productExternal) Kind() string { return kindProduct }

// indexProductFeatureRefs indexes Products by the EntitlementFeatures their spec.features name.
const indexProductFeatureRefs = "spec.features.featureRef.name"

// productKind is the Product's registry entry: a Product whose features name EntitlementFeatures waits for their
// Stripe IDs.
func productKind() kindEntry {
	k := entry(kindProduct, "product", resProduct, func() *billingv1.Product { return &billingv1.Product{} },
		func() *billingv1.ProductList { return &billingv1.ProductList{} },
		func(d loopDeps) External[*billingv1.Product] {
			return productExternal{refs: refResolver{cache: d.client, live: d.apiReader}}
		},
		stripe.OpRetrieve, stripe.OpCreate, stripe.OpUpdate, stripe.OpList)
	k.refs = []reference{{kind: kindEntitlementFeature, index: indexProductFeatureRefs,
		extract: func(o client.Object) []string {
			var names []string
			for _, f := range o.(*billingv1.Product).Spec.Features {
				if f.FeatureRef != nil {
					names = append(names, f.FeatureRef.Name)
				}
			}
			return names
		}}}
	return k
}

func (e productExternal) Dependencies(ctx context.Context, obj *billingv1.Product) (bool, string, error) {
	_, msg, err := e.featureIDs(ctx, obj)
	return msg == "", msg, err
}

// Stale implements External: an EntitlementFeature re-created under a new Stripe ID is attached in its place.
func (e productExternal) Stale(ctx context.Context, obj *billingv1.Product) (bool, error) {
	want, msg, err := e.featureIDs(ctx, obj)
	if err != nil || msg != "" || want == nil {
		return false, ignoreMissingRef(err)
	}
	have := make([]string, 0, len(obj.Status.Features))
	for _, f := range obj.Status.Features {
		have = append(have, f.FeatureID)
	}
	return !slices.Equal(sortedIDs(want), sortedIDs(have)), nil
}

func (productExternal) AdoptID(_ context.Context, _ *stripe.Client, obj *billingv1.Product) (string, error) {
	if obj.Spec.Adopt == nil {
		return "", nil
	}
	return obj.Spec.Adopt.ID, nil
}

// productParams renders the spec fields that differ from cur (all set ones when cur is nil).
func productParams(spec *billingv1.ProductSpec, stamp map[string]string, cur *stripego.Product) (
	*stripego.ProductParams, map[string]string) {
	p := &stripego.ProductParams{}
	changed := map[string]string{}
	var have stripego.Product
	if cur != nil {
		have = *cur
	} else {
		have.Active = true
	}
	str := func(name, want, got string, set func(*string)) {
		if want != got {
			set(stripego.String(want))
			changed[name] = got + "->" + want
		}
	}
	str("name", spec.Name, have.Name, func(v *string) { p.Name = v })
	str("description", spec.Description, have.Description, func(v *string) { p.Description = v })
	str("tax_code", spec.TaxCode, taxCodeID(have.TaxCode), func(v *string) { p.TaxCode = v })
	str("unit_label", spec.UnitLabel, have.UnitLabel, func(v *string) { p.UnitLabel = v })
	str("statement_descriptor", spec.StatementDescriptor, have.StatementDescriptor,
		func(v *string) { p.StatementDescriptor = v })
	if active := spec.Active == nil || *spec.Active; active != have.Active {
		p.Active = stripego.Bool(active)
		changed["active"] = strconv.FormatBool(have.Active) + "->" + strconv.FormatBool(active)
	}
	metadataDiff(&p.Params, desiredMetadata(spec.Metadata, stamp), have.Metadata, cur == nil, changed)
	return p, changed
}

func taxCodeID(tc *stripego.TaxCode) string {
	if tc == nil {
		return ""
	}
	return tc.ID
}

func getProduct(ctx context.Context, c *stripe.Client, id string, prio stripe.Priority) (*stripego.Product, error) {
	p := &stripego.ProductParams{}
	return stripe.Call(ctx, c, stripe.Op{Resource: resProduct, Operation: stripe.OpRetrieve, Priority: prio}, &p.Params,
		func() (*stripego.Product, error) { return c.API.Products.Get(id, p) })
}

func updateProduct(ctx context.Context, c *stripe.Client, id, key string, p *stripego.ProductParams) error {
	_, err := stripe.Call(ctx, c, stripe.Op{Resource: resProduct, Operation: stripe.OpUpdate, IdempotencyKey: key},
		&p.Params, func() (*stripego.Product, error) { return c.API.Products.Update(id, p) })
	return err
}

func (e productExternal) Observe(ctx context.Context, c *stripe.Client, obj *billingv1.Product, id string,
	prio stripe.Priority, stamp map[string]string) (Observation, error) {
	cur, err := getProduct(ctx, c, id, prio)
	if stripe.IsNotFound(err) {
		return Observation{}, nil
	}
	if err != nil {
		return Observation{}, err
	}
	if cur.Deleted {
		return Observation{}, nil
	}
	obj.Status.DefaultPriceID = ""
	if cur.DefaultPrice != nil {
		obj.Status.DefaultPriceID = cur.DefaultPrice.ID
	}
	_, changed := productParams(&obj.Spec, stamp, cur)
	if err := e.observeFeatures(ctx, c, obj, id, prio, changed); err != nil {
		return Observation{}, err
	}
	return Observation{Exists: true, UpToDate: len(changed) == 0, Current: cur, Drift: driftOf(changed)}, nil
}

// Create creates the product and attaches its features. A failure to attach leaves the pending create in place, so
// the next pass replays the create's key (Stripe answers with the same product) and attaches again under the same
// keys.
func (e productExternal) Create(ctx context.Context, c *stripe.Client, obj *billingv1.Product, key string,
	stamp map[string]string) (string, error) {
	p, _ := productParams(&obj.Spec, stamp, nil)
	prod, err := stripe.Call(ctx, c, stripe.Op{Resource: resProduct, Operation: stripe.OpCreate, IdempotencyKey: key},
		&p.Params, func() (*stripego.Product, error) { return c.API.Products.New(p) })
	if err != nil {
		return "", err
	}
	obj.Status.Features = nil
	if err := e.syncFeatures(ctx, c, obj, prod.ID); err != nil {
		return "", err
	}
	return prod.ID, nil
}

func (e productExternal) Update(ctx context.Context, c *stripe.Client, obj *billingv1.Product,
	stamp map[string]string, obs Observation) error {
	cur, err := observed(ctx, c, obj.Status.ID, obs, getProduct)
	if err != nil {
		return err
	}
	p, changed := productParams(&obj.Spec, stamp, cur)
	if len(changed) > 0 {
		if err := updateProduct(ctx, c, obj.Status.ID, updateKey(obj, changed), p); err != nil {
			return err
		}
	}
	return e.syncFeatures(ctx, c, obj, obj.Status.ID)
}

func (productExternal) Find(ctx context.Context, c *stripe.Client, obj *billingv1.Product,
	since time.Time) (string, error) {
	p := &stripego.ProductListParams{CreatedRange: &stripego.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	return findByUID(ctx, c, resProduct, &p.ListParams, string(obj.UID), nil,
		func() ([]stripeObject, bool, error) {
			it := c.API.Products.List(p)
			if err := it.Err(); err != nil {
				return nil, false, err
			}
			l := it.ProductList()
			return toStripeObjects(l.Data, func(o *stripego.Product) (string, map[string]string) {
				return o.ID, o.Metadata
			}), l.HasMore, nil
		})
}

// Delete archives the product (Archive) or leaves it (Orphan).
func (productExternal) Delete(ctx context.Context, c *stripe.Client, obj *billingv1.Product) error {
	if obj.Spec.DeletionPolicy == billingv1.Orphan {
		return nil
	}
	key := stripe.IdempotencyKey(string(obj.UID), "archive", obj.Generation)
	return updateProduct(ctx, c, obj.Status.ID, key, &stripego.ProductParams{Active: stripego.Bool(false)})
}
