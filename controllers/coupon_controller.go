package controllers

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=coupons,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=coupons/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=billing.stripe-operator.io,resources=coupons/finalizers,verbs=update

const resCoupon = "coupon"

// couponExternal maps a Coupon to a Stripe coupon. Stripe lets only name and metadata change; the CRD refuses a
// change of the other fields, so they differ from Stripe only for an adopted coupon, which is then Stalled.
type couponExternal struct {
	never[*billingv1.Coupon]
	refs refResolver
}

func (couponExternal) Kind() string { return kindCoupon }

// indexCouponProductRefs indexes Coupons by the Products their appliesTo names.
const indexCouponProductRefs = "spec.appliesTo.products.productRef.name"

// couponKind is the Coupon's registry entry: a Coupon limited to Products waits for their Stripe IDs.
func couponKind() kindEntry {
	k := entry(kindCoupon, "coupon", resCoupon, func() *billingv1.Coupon { return &billingv1.Coupon{} },
		func() *billingv1.CouponList { return &billingv1.CouponList{} },
		func(d loopDeps) External[*billingv1.Coupon] {
			return couponExternal{refs: refResolver{cache: d.client, live: d.apiReader}}
		},
		stripe.OpRetrieve, stripe.OpCreate, stripe.OpUpdate, stripe.OpDelete, stripe.OpList)
	k.refs = []reference{{kind: kindProduct, index: indexCouponProductRefs, extract: func(o client.Object) []string {
		var names []string
		if at := o.(*billingv1.Coupon).Spec.AppliesTo; at != nil {
			for _, p := range at.Products {
				if p.ProductRef != nil {
					names = append(names, p.ProductRef.Name)
				}
			}
		}
		return names
	}}}
	return k
}

// productIDs resolves appliesTo to Stripe product IDs; msg says what is still missing.
func (e couponExternal) productIDs(ctx context.Context, obj *billingv1.Coupon) ([]string, string, error) {
	at := obj.Spec.AppliesTo
	if at == nil {
		return nil, "", nil
	}
	ids := make([]string, 0, len(at.Products))
	for _, p := range at.Products {
		id := p.ProductID
		if p.ProductRef != nil {
			var msg string
			var err error
			if id, msg, err = e.refs.id(ctx, obj.Namespace, p.ProductRef.Name, &billingv1.Product{}); err != nil ||
				msg != "" {
				return nil, msg, err
			}
		}
		ids = append(ids, id)
	}
	return ids, "", nil
}

func (e couponExternal) Dependencies(ctx context.Context, obj *billingv1.Coupon) (bool, string, error) {
	_, msg, err := e.productIDs(ctx, obj)
	return msg == "", msg, err
}

// Stale implements External: appliesTo cannot change in Stripe, so a Product that moved has nothing to restore.
func (couponExternal) Stale(context.Context, *billingv1.Coupon) (bool, error) { return false, nil }

func (couponExternal) AdoptID(_ context.Context, _ *stripe.Client, obj *billingv1.Coupon) (string, error) {
	if obj.Spec.Adopt == nil {
		return "", nil
	}
	return obj.Spec.Adopt.ID, nil
}

// percentOff reads spec.percentOff (20, or "12.5"); 0 when unset.
func percentOff(v *intstr.IntOrString) float64 {
	if v == nil {
		return 0
	}
	if v.Type == intstr.Int {
		return float64(v.IntVal)
	}
	f, _ := strconv.ParseFloat(v.StrVal, 64) // the CRD admits only decimals
	return f
}

// formatPercent renders a percentage as Stripe's decimal ("20", "12.5").
func formatPercent(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// couponImmutableDiff names the immutable fields in which the Stripe coupon differs from the spec, with both values.
func couponImmutableDiff(spec *billingv1.CouponSpec, products []string, cur *stripego.Coupon) []string {
	var diff []string
	differ := func(field, want, have string) {
		if want != have {
			diff = append(diff, fmt.Sprintf("%s (spec %s, Stripe %s)", field, want, have))
		}
	}
	if want := percentOff(spec.PercentOff); math.Abs(want-cur.PercentOff) > 1e-9 {
		differ("percentOff", formatPercent(want), formatPercent(cur.PercentOff))
	}
	differ("amountOff", strconv.FormatInt(deref(spec.AmountOff), 10), strconv.FormatInt(cur.AmountOff, 10))
	differ("currency", spec.Currency, string(cur.Currency))
	duration := spec.Duration
	if duration == "" {
		duration = billingv1.CouponOnce
	}
	differ("duration", string(duration), string(cur.Duration))
	differ("durationInMonths", strconv.FormatInt(deref(spec.DurationInMonths), 10),
		strconv.FormatInt(cur.DurationInMonths, 10))
	differ("maxRedemptions", strconv.FormatInt(deref(spec.MaxRedemptions), 10),
		strconv.FormatInt(cur.MaxRedemptions, 10))
	var redeemBy int64
	if spec.RedeemBy != nil {
		redeemBy = spec.RedeemBy.Unix()
	}
	differ("redeemBy", strconv.FormatInt(redeemBy, 10), strconv.FormatInt(cur.RedeemBy, 10))
	var have []string
	if cur.AppliesTo != nil {
		have = cur.AppliesTo.Products
	}
	differ("appliesTo", strings.Join(slices.Sorted(slices.Values(products)), ","),
		strings.Join(slices.Sorted(slices.Values(have)), ","))
	return diff
}

// deref is the value of an optional integer, 0 when unset.
func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// couponParams renders the mutable fields that differ from cur (all set ones when cur is nil).
func couponParams(spec *billingv1.CouponSpec, stamp map[string]string, cur *stripego.Coupon) (
	*stripego.CouponParams, map[string]string) {
	p := &stripego.CouponParams{}
	changed := map[string]string{}
	var have stripego.Coupon
	if cur != nil {
		have = *cur
	}
	if spec.Name != have.Name {
		p.Name = stripego.String(spec.Name)
		changed["name"] = have.Name + "->" + spec.Name
	}
	metadataDiff(&p.Params, desiredMetadata(spec.Metadata, stamp), have.Metadata, cur == nil, changed)
	return p, changed
}

func getCoupon(ctx context.Context, c *stripe.Client, id string, prio stripe.Priority) (*stripego.Coupon, error) {
	p := &stripego.CouponParams{}
	p.AddExpand("applies_to") // Stripe shows it only when asked
	return stripe.Call(ctx, c, stripe.Op{Resource: resCoupon, Operation: stripe.OpRetrieve, Priority: prio}, &p.Params,
		func() (*stripego.Coupon, error) { return c.API.Coupons.Get(id, p) })
}

// setCouponStatus copies what Stripe counts into status.
func setCouponStatus(obj *billingv1.Coupon, cur *stripego.Coupon, products []string) {
	obj.Status.TimesRedeemed = cur.TimesRedeemed
	obj.Status.Valid = stripego.Bool(cur.Valid)
	obj.Status.ProductIDs = products
}

func (e couponExternal) Observe(ctx context.Context, c *stripe.Client, obj *billingv1.Coupon, id string,
	prio stripe.Priority, stamp map[string]string) (Observation, error) {
	cur, err := getCoupon(ctx, c, id, prio)
	if stripe.IsNotFound(err) {
		return Observation{}, nil
	}
	if err != nil {
		return Observation{}, err
	}
	if cur.Deleted {
		return Observation{}, nil
	}
	products, _, err := e.productIDs(ctx, obj)
	if err != nil {
		return Observation{}, err
	}
	setCouponStatus(obj, cur, products)
	if diff := couponImmutableDiff(&obj.Spec, products, cur); len(diff) > 0 {
		// Only an adopted coupon can get here: the CRD refuses changes of these fields.
		return Observation{}, &stripe.Error{Class: stripe.ClassInvalidRequest, Message: "Stripe coupon " + id +
			" differs from the spec in fields Stripe cannot change: " + strings.Join(diff, "; ") +
			"; make the spec match the coupon, or create a new Coupon"}
	}
	_, changed := couponParams(&obj.Spec, stamp, cur)
	return Observation{Exists: true, UpToDate: len(changed) == 0, Current: cur, Drift: driftOf(changed)}, nil
}

func (e couponExternal) Create(ctx context.Context, c *stripe.Client, obj *billingv1.Coupon, key string,
	stamp map[string]string) (string, error) {
	products, msg, err := e.productIDs(ctx, obj)
	if err != nil {
		return "", err
	}
	if msg != "" {
		return "", fmt.Errorf("%s", msg)
	}
	s := &obj.Spec
	p, _ := couponParams(s, stamp, nil)
	if s.ID != "" {
		p.ID = stripego.String(s.ID)
	}
	if s.PercentOff != nil {
		p.PercentOff = stripego.Float64(percentOff(s.PercentOff))
	}
	if s.AmountOff != nil {
		p.AmountOff, p.Currency = stripego.Int64(*s.AmountOff), stripego.String(s.Currency)
	}
	if s.Duration != "" {
		p.Duration = stripego.String(string(s.Duration))
	}
	if s.DurationInMonths != nil {
		p.DurationInMonths = stripego.Int64(*s.DurationInMonths)
	}
	if s.MaxRedemptions != nil {
		p.MaxRedemptions = stripego.Int64(*s.MaxRedemptions)
	}
	if s.RedeemBy != nil {
		p.RedeemBy = stripego.Int64(s.RedeemBy.Unix())
	}
	if products != nil {
		p.AppliesTo = &stripego.CouponAppliesToParams{Products: stripego.StringSlice(products)}
	}
	cp, err := stripe.Call(ctx, c, stripe.Op{Resource: resCoupon, Operation: stripe.OpCreate, IdempotencyKey: key},
		&p.Params, func() (*stripego.Coupon, error) { return c.API.Coupons.New(p) })
	if err != nil {
		return "", err
	}
	setCouponStatus(obj, cp, products)
	return cp.ID, nil
}

func (couponExternal) Update(ctx context.Context, c *stripe.Client, obj *billingv1.Coupon,
	stamp map[string]string, obs Observation) error {
	cur, err := observed(ctx, c, obj.Status.ID, obs, getCoupon)
	if err != nil {
		return err
	}
	p, changed := couponParams(&obj.Spec, stamp, cur)
	if len(changed) == 0 {
		return nil
	}
	key := updateKey(obj, changed)
	_, err = stripe.Call(ctx, c, stripe.Op{Resource: resCoupon, Operation: stripe.OpUpdate, IdempotencyKey: key},
		&p.Params, func() (*stripego.Coupon, error) { return c.API.Coupons.Update(obj.Status.ID, p) })
	return err
}

func (couponExternal) Find(ctx context.Context, c *stripe.Client, obj *billingv1.Coupon,
	since time.Time) (string, error) {
	p := &stripego.CouponListParams{CreatedRange: &stripego.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	return findByUID(ctx, c, resCoupon, &p.ListParams, string(obj.UID), nil,
		func() ([]stripeObject, bool, error) {
			it := c.API.Coupons.List(p)
			if err := it.Err(); err != nil {
				return nil, false, err
			}
			l := it.CouponList()
			return toStripeObjects(l.Data, func(o *stripego.Coupon) (string, map[string]string) {
				return o.ID, o.Metadata
			}), l.HasMore, nil
		})
}

// Delete deletes the coupon (Delete: it can no longer be redeemed; discounts already applied keep working) or
// leaves it (Orphan).
func (couponExternal) Delete(ctx context.Context, c *stripe.Client, obj *billingv1.Coupon) error {
	if obj.Spec.DeletionPolicy == billingv1.OrphanObject {
		return nil
	}
	p := &stripego.CouponParams{}
	key := stripe.IdempotencyKey(string(obj.UID), "delete", obj.Generation)
	_, err := stripe.Call(ctx, c, stripe.Op{Resource: resCoupon, Operation: stripe.OpDelete, IdempotencyKey: key},
		&p.Params, func() (*stripego.Coupon, error) { return c.API.Coupons.Del(obj.Status.ID, p) })
	return err
}
