package controllers

import (
	"context"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=entitlementfeatures,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=entitlementfeatures/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=entitlementfeatures/finalizers,verbs=update

const (
	kindEntitlementFeature = "EntitlementFeature"
	resEntitlementFeature  = "entitlements.feature"
)

// entitlementFeatureExternal maps an EntitlementFeature to a Stripe entitlement feature. Stripe lets name, metadata
// and active change; the lookup key is fixed at creation (the CRD refuses a change of it), so it differs from Stripe
// only for an adopted feature, which is then Stalled.
type entitlementFeatureExternal struct {
	standalone[*billingv1.EntitlementFeature]
}

func (entitlementFeatureExternal) Kind() string { return kindEntitlementFeature }

// entitlementFeatureKind is the EntitlementFeature's registry entry.
func entitlementFeatureKind() kindEntry {
	return entry(kindEntitlementFeature, resEntitlementFeature, resEntitlementFeature,
		func() *billingv1.EntitlementFeature { return &billingv1.EntitlementFeature{} },
		func() *billingv1.EntitlementFeatureList { return &billingv1.EntitlementFeatureList{} },
		func(loopDeps) External[*billingv1.EntitlementFeature] { return entitlementFeatureExternal{} },
		stripe.OpRetrieve, stripe.OpCreate, stripe.OpUpdate, stripe.OpList)
}

func (entitlementFeatureExternal) AdoptID(_ context.Context, _ *stripe.Client,
	obj *billingv1.EntitlementFeature) (string, error) {
	if obj.Spec.Adopt == nil {
		return "", nil
	}
	return obj.Spec.Adopt.ID, nil
}

// featureParams renders the mutable fields that differ from cur (all set ones when cur is nil). A feature the
// spec manages is active: an archived one (archived in Stripe by someone else) is brought back.
func featureParams(spec *billingv1.EntitlementFeatureSpec, stamp map[string]string,
	cur *stripego.EntitlementsFeature) (*stripego.EntitlementsFeatureParams, map[string]string) {
	p := &stripego.EntitlementsFeatureParams{}
	changed := map[string]string{}
	have := stripego.EntitlementsFeature{Active: true}
	if cur != nil {
		have = *cur
	}
	if spec.Name != have.Name {
		p.Name = stripego.String(spec.Name)
		changed["name"] = have.Name + "->" + spec.Name
	}
	if !have.Active {
		p.Active = stripego.Bool(true)
		changed["active"] = "false->true"
	}
	metadataDiff(&p.Params, desiredMetadata(spec.Metadata, stamp), have.Metadata, cur == nil, changed)
	return p, changed
}

func getFeature(ctx context.Context, c *stripe.Client, id string, prio stripe.Priority) (
	*stripego.EntitlementsFeature, error) {
	p := &stripego.EntitlementsFeatureParams{}
	return stripe.Call(ctx, c, stripe.Op{Resource: resEntitlementFeature, Operation: stripe.OpRetrieve,
		Priority: prio}, &p.Params,
		func() (*stripego.EntitlementsFeature, error) { return c.API.EntitlementsFeatures.Get(id, p) })
}

func updateFeature(ctx context.Context, c *stripe.Client, id, key string,
	p *stripego.EntitlementsFeatureParams) error {
	_, err := stripe.Call(ctx, c, stripe.Op{Resource: resEntitlementFeature, Operation: stripe.OpUpdate,
		IdempotencyKey: key}, &p.Params,
		func() (*stripego.EntitlementsFeature, error) { return c.API.EntitlementsFeatures.Update(id, p) })
	return err
}

func (entitlementFeatureExternal) Observe(ctx context.Context, c *stripe.Client, obj *billingv1.EntitlementFeature,
	id string, prio stripe.Priority, stamp map[string]string) (Observation, error) {
	cur, err := getFeature(ctx, c, id, prio)
	if stripe.IsNotFound(err) {
		return Observation{}, nil
	}
	if err != nil {
		return Observation{}, err
	}
	obj.Status.Active = stripego.Bool(cur.Active)
	if cur.LookupKey != obj.Spec.LookupKey {
		// Only an adopted feature can get here: the CRD refuses a change of lookupKey.
		return Observation{}, &stripe.Error{Class: stripe.ClassInvalidRequest, Message: "Stripe feature " + id +
			" has lookup key " + cur.LookupKey + ", the spec " + obj.Spec.LookupKey + "; Stripe cannot change a " +
			"feature's lookup key: make the spec match the feature, or create a new EntitlementFeature"}
	}
	_, changed := featureParams(&obj.Spec, stamp, cur)
	return Observation{Exists: true, UpToDate: len(changed) == 0, Current: cur, Drift: driftOf(changed)}, nil
}

func (entitlementFeatureExternal) Create(ctx context.Context, c *stripe.Client, obj *billingv1.EntitlementFeature,
	key string, stamp map[string]string) (string, error) {
	p, _ := featureParams(&obj.Spec, stamp, nil)
	p.LookupKey = stripego.String(obj.Spec.LookupKey)
	f, err := stripe.Call(ctx, c, stripe.Op{Resource: resEntitlementFeature, Operation: stripe.OpCreate,
		IdempotencyKey: key}, &p.Params,
		func() (*stripego.EntitlementsFeature, error) { return c.API.EntitlementsFeatures.New(p) })
	if err != nil {
		return "", err
	}
	obj.Status.Active = stripego.Bool(f.Active)
	return f.ID, nil
}

func (entitlementFeatureExternal) Update(ctx context.Context, c *stripe.Client, obj *billingv1.EntitlementFeature,
	stamp map[string]string, obs Observation) error {
	cur, err := observed(ctx, c, obj.Status.ID, obs, getFeature)
	if err != nil {
		return err
	}
	p, changed := featureParams(&obj.Spec, stamp, cur)
	if len(changed) == 0 {
		return nil
	}
	if err := updateFeature(ctx, c, obj.Status.ID, updateKey(obj, changed), p); err != nil {
		return err
	}
	obj.Status.Active = stripego.Bool(true)
	return nil
}

// Find looks the feature up by its lookup key, which Stripe keeps unique per account (a second create with the
// same key is refused, so a lost create's answer cannot leave a duplicate behind): the list has no created filter.
func (entitlementFeatureExternal) Find(ctx context.Context, c *stripe.Client, obj *billingv1.EntitlementFeature,
	_ time.Time) (string, error) {
	p := &stripego.EntitlementsFeatureListParams{}
	p.Filters.AddFilter("lookup_key", "", obj.Spec.LookupKey)
	return findByUID(ctx, c, resEntitlementFeature, &p.ListParams, string(obj.UID), nil,
		func() ([]stripeObject, bool, error) {
			it := c.API.EntitlementsFeatures.List(p)
			if err := it.Err(); err != nil {
				return nil, false, err
			}
			l := it.EntitlementsFeatureList()
			return toStripeObjects(l.Data, func(o *stripego.EntitlementsFeature) (string, map[string]string) {
				return o.ID, o.Metadata
			}), l.HasMore, nil
		})
}

// Delete archives the feature (Archive: Stripe cannot delete a feature; an archived one can no longer be attached
// to products) or leaves it (Orphan).
func (entitlementFeatureExternal) Delete(ctx context.Context, c *stripe.Client,
	obj *billingv1.EntitlementFeature) error {
	if obj.Spec.DeletionPolicy == billingv1.Orphan {
		return nil
	}
	key := stripe.IdempotencyKey(string(obj.UID), "archive", obj.Generation)
	return updateFeature(ctx, c, obj.Status.ID, key,
		&stripego.EntitlementsFeatureParams{Active: stripego.Bool(false)})
}
