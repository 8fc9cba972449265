package controllers

import (
	"context"
	"slices"
	"strings"

	stripego "github.com/stripe/stripe-go/v76"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// A Product's spec.features are kept in sync with Stripe's product features: the reconcile loop lists them when it
// reads the product, attaches the features the spec names and Stripe lacks, and detaches those Stripe has and the
// spec does not name. stripe-go v76 has no typed call for product features (internal/stripe/productfeatures.go).

// resProductFeature labels the product feature calls in the request metrics.
const resProductFeature = "product_feature"

// featureIDs resolves spec.features to Stripe feature IDs, without duplicates; nil when the spec leaves the
// product's features alone. msg says which EntitlementFeature has no Stripe ID yet.
func (e productExternal) featureIDs(ctx context.Context, obj *billingv1.Product) ([]string, string, error) {
	if obj.Spec.Features == nil {
		return nil, "", nil
	}
	ids := make([]string, 0, len(obj.Spec.Features))
	for _, f := range obj.Spec.Features {
		id := f.FeatureID
		if f.FeatureRef != nil {
			var msg string
			var err error
			if id, msg, err = e.refs.id(ctx, obj.Namespace, f.FeatureRef.Name, &billingv1.EntitlementFeature{}); err != nil ||
				msg != "" {
				return nil, msg, err
			}
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, "", nil
}

// sortedSet is a sorted copy of ids without duplicates.
func sortedIDs(ids []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(ids)))
}

// listProductFeatures reads every feature attached to the product.
func listProductFeatures(ctx context.Context, c *stripe.Client, product string, prio stripe.Priority) (
	[]billingv1.AttachedFeature, error) {
	lp := &stripego.ListParams{Limit: stripego.Int64(100)}
	var out []billingv1.AttachedFeature
	for {
		l, err := stripe.Call(ctx, c, stripe.Op{Resource: resProductFeature, Operation: stripe.OpList,
			Priority: prio}, lp, func() (*stripe.ProductFeatureList, error) {
			return c.ListProductFeatures(product, lp)
		})
		if err != nil {
			return nil, err
		}
		for _, pf := range l.Data {
			a := billingv1.AttachedFeature{ID: pf.ID}
			if pf.EntitlementFeature != nil {
				a.FeatureID, a.LookupKey = pf.EntitlementFeature.ID, pf.EntitlementFeature.LookupKey
			}
			out = append(out, a)
		}
		if !l.HasMore || len(l.Data) == 0 {
			return out, nil
		}
		lp.StartingAfter = stripego.String(l.Data[len(l.Data)-1].ID)
	}
}

// featurePlan is what brings Stripe's product features in line with want: the features to attach, and the
// attachments to detach.
func featurePlan(want []string, have []billingv1.AttachedFeature) (attach []string,
	detach []billingv1.AttachedFeature) {
	for _, id := range want {
		if !slices.ContainsFunc(have, func(a billingv1.AttachedFeature) bool { return a.FeatureID == id }) {
			attach = append(attach, id)
		}
	}
	for _, a := range have {
		if !slices.Contains(want, a.FeatureID) {
			detach = append(detach, a)
		}
	}
	return attach, detach
}

// observeFeatures reads the features of product id (status.id, or the one being adopted) into status.features and
// records in changed how they differ from the spec ("features": Stripe's IDs -> the spec's). Nothing is read while
// the spec leaves them alone.
func (e productExternal) observeFeatures(ctx context.Context, c *stripe.Client, obj *billingv1.Product, id string,
	prio stripe.Priority, changed map[string]string) error {
	want, msg, err := e.featureIDs(ctx, obj)
	if err != nil || msg != "" || want == nil {
		obj.Status.Features = nil
		return ignoreMissingRef(err)
	}
	have, err := listProductFeatures(ctx, c, id, prio)
	if err != nil {
		return err
	}
	obj.Status.Features = have
	if attach, detach := featurePlan(want, have); len(attach) > 0 || len(detach) > 0 {
		ids := make([]string, 0, len(have))
		for _, a := range have {
			ids = append(ids, a.FeatureID)
		}
		changed["features"] = strings.Join(sortedIDs(ids), ",") + "->" + strings.Join(sortedIDs(want), ",")
	}
	return nil
}

// syncFeatures attaches and detaches the features of product as the plan from status.features (read by Observe in
// this pass; none after a create) says. Each write's idempotency key names the feature or attachment and what the
// update answers (updateKey), so a retry replays it and a repair after a change made in Stripe sends a new one.
func (e productExternal) syncFeatures(ctx context.Context, c *stripe.Client, obj *billingv1.Product,
	product string) error {
	want, msg, err := e.featureIDs(ctx, obj)
	if err != nil || msg != "" || want == nil {
		return ignoreMissingRef(err)
	}
	attach, detach := featurePlan(want, obj.Status.Features)
	for _, a := range detach {
		p := &stripego.Params{}
		key := updateKey(obj, map[string]string{"features.detach": a.ID})
		_, err := stripe.Call(ctx, c, stripe.Op{Resource: resProductFeature, Operation: stripe.OpDelete,
			IdempotencyKey: key}, p, func() (*stripe.ProductFeature, error) {
			return c.DetachProductFeature(product, a.ID, p)
		})
		if err != nil && !stripe.IsNotFound(err) {
			return err
		}
	}
	kept := slices.DeleteFunc(slices.Clone(obj.Status.Features), func(a billingv1.AttachedFeature) bool {
		return !slices.Contains(want, a.FeatureID)
	})
	for _, id := range attach {
		p := &stripe.ProductFeatureParams{EntitlementFeature: stripego.String(id)}
		key := updateKey(obj, map[string]string{"features.attach": id})
		pf, err := stripe.Call(ctx, c, stripe.Op{Resource: resProductFeature, Operation: stripe.OpCreate,
			IdempotencyKey: key}, &p.Params, func() (*stripe.ProductFeature, error) {
			return c.AttachProductFeature(product, p)
		})
		if err != nil {
			return err
		}
		a := billingv1.AttachedFeature{ID: pf.ID, FeatureID: id}
		if pf.EntitlementFeature != nil {
			a.LookupKey = pf.EntitlementFeature.LookupKey
		}
		kept = append(kept, a)
	}
	obj.Status.Features = kept
	return nil
}
