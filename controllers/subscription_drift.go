package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

// Changes made in Stripe to a Subscription (docs/architecture.md, "Changes made in Stripe"). The operator tells a
// change made in Stripe from an edit of the spec per group of spec fields: status.appliedSpec holds a fingerprint of
// each group as last applied to Stripe (or found equal there). A group that differs in Stripe while its spec still
// has that fingerprint was changed in Stripe; one whose fingerprint moved was edited in the spec, which is applied
// under either policy (the person's latest word wins).
//
//   - Restore: the change is undone (the event worker asks for the read at once). A group restored and changed in
//     Stripe again within the drift-loop window is not restored again: the object is Stalled with reason DriftLoop
//     until its spec changes or Stripe agrees with it again.
//   - Follow: the groups in followedGroups keep Stripe's values, at every resync, and SpecDiverged says so; the
//     other groups are restored as under Restore.

// The groups of a Subscription's spec fields.
const (
	groupItems                = "items"
	groupCancelAtPeriodEnd    = "cancelAtPeriodEnd"
	groupMetadata             = "metadata"
	groupCollectionMethod     = "collectionMethod"
	groupDaysUntilDue         = "daysUntilDue"
	groupDefaultPaymentMethod = "defaultPaymentMethod"
	groupDiscount             = "discount"
)

// followedGroups are the groups whose changes in Stripe stand under changesInStripe Follow: what a customer changes
// in the customer portal and support in the Dashboard.
var followedGroups = []string{groupItems, groupCancelAtPeriodEnd, groupDiscount}

// defaultDriftLoopWindow is how soon a change coming back after a restore counts as a loop (Options.DriftLoopWindow).
const defaultDriftLoopWindow = 10 * time.Minute

// changeGroup is the group of a key of subscriptionParams' changes; "" for a change that is never a change made in
// Stripe: an item moved to the successor of its rolled Price (priceChangePolicy Migrate).
func changeGroup(key string) string {
	switch {
	case strings.HasPrefix(key, "add."), strings.HasPrefix(key, "delete."), strings.HasPrefix(key, "quantity."):
		return groupItems
	case strings.HasPrefix(key, "metadata."):
		return groupMetadata
	}
	switch key {
	case "cancel_at_period_end":
		return groupCancelAtPeriodEnd
	case "collection_method":
		return groupCollectionMethod
	case "days_until_due":
		return groupDaysUntilDue
	case "default_payment_method":
		return groupDefaultPaymentMethod
	case groupDiscount: // the change key is the group's name
		return groupDiscount
	}
	return ""
}

// stripeFieldGroups maps the fields of a Stripe subscription that an event's previous_attributes can name to the
// group of spec fields they belong to. Fields Stripe moves on its own (status, periods, latest_invoice) are absent,
// and so is the discount: its own customer.discount.* events announce it (see eventWorker.discountEvent).
var stripeFieldGroups = map[string]string{
	"items": groupItems, "quantity": groupItems, "plan": groupItems,
	"cancel_at_period_end": groupCancelAtPeriodEnd, "metadata": groupMetadata,
	"collection_method": groupCollectionMethod, "days_until_due": groupDaysUntilDue,
	"default_payment_method": groupDefaultPaymentMethod,
}

// eventChangedGroups are the groups of spec fields an event's previous_attributes says changed, sorted.
func eventChangedGroups(previous map[string]json.RawMessage) []string {
	var groups []string
	for field := range previous {
		if g, ok := stripeFieldGroups[field]; ok && !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	slices.Sort(groups)
	return groups
}

// following reports whether the subscription keeps Stripe's values of group g when they were changed in Stripe.
func following(spec *billingv1.SubscriptionSpec, g string) bool {
	return spec.ChangesInStripe == billingv1.ChangesFollow && slices.Contains(followedGroups, g)
}

// specFingerprints fingerprints each group of the spec's fields.
func specFingerprints(spec *billingv1.SubscriptionSpec) map[string]string {
	values := map[string]any{
		groupItems: spec.Items, groupCancelAtPeriodEnd: spec.CancelAtPeriodEnd, groupMetadata: spec.Metadata,
		groupCollectionMethod: spec.CollectionMethod, groupDaysUntilDue: spec.DaysUntilDue,
		groupDefaultPaymentMethod: spec.DefaultPaymentMethod, groupDiscount: spec.Discount,
	}
	out := make(map[string]string, len(values))
	for g, v := range values {
		raw, _ := json.Marshal(v) // plain values: cannot fail
		sum := sha256.Sum256(raw)
		out[g] = hex.EncodeToString(sum[:6])
	}
	return out
}

// driftPlan sorts the groups that differ between the spec and Stripe: edited in the spec (applied), changed in
// Stripe and followed, changed in Stripe and restored, changed in Stripe again too soon after a restore (loop).
type driftPlan struct {
	follow, restore, loop []string
}

// skip reports whether the update leaves group g as Stripe has it.
func (p driftPlan) skip(g string) bool {
	return slices.Contains(p.follow, g) || slices.Contains(p.loop, g)
}

// planDrift classifies the groups of changed (subscriptionParams' changes against Stripe).
func planDrift(sub *billingv1.Subscription, changed map[string]string, now time.Time,
	window time.Duration) driftPlan {
	fp := specFingerprints(&sub.Spec)
	var plan driftPlan
	var groups []string
	for k := range changed {
		if g := changeGroup(k); g != "" && !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	slices.Sort(groups)
	for _, g := range groups {
		applied, ok := sub.Status.AppliedSpec[g]
		if !ok || applied != fp[g] {
			continue // edited in the spec (or never applied): applied
		}
		if following(&sub.Spec, g) {
			plan.follow = append(plan.follow, g)
			continue
		}
		i := slices.IndexFunc(sub.Status.DriftRestores, func(r billingv1.DriftRestore) bool { return r.Field == g })
		if i >= 0 && (sub.Status.DriftRestores[i].Loop || now.Sub(sub.Status.DriftRestores[i].RestoredAt.Time) < window) {
			plan.loop = append(plan.loop, g)
			continue
		}
		plan.restore = append(plan.restore, g)
	}
	return plan
}

// withoutSkipped removes from changed the changes of the groups the plan leaves as Stripe has them.
func withoutSkipped(changed map[string]string, plan driftPlan) map[string]string {
	out := make(map[string]string, len(changed))
	for k, v := range changed {
		if !plan.skip(changeGroup(k)) {
			out[k] = v
		}
	}
	return out
}

// recordApplied notes, after a pass that brought Stripe in line with the spec (the skipped groups aside), the
// fingerprints of the spec and the groups restored; it forgets restores older than the window and loops of groups
// that agree again. It also sets SpecDiverged, which only subscriptions that follow changes made in Stripe carry.
func recordApplied(sub *billingv1.Subscription, plan driftPlan, now time.Time, window time.Duration) {
	st := &sub.Status
	fp := specFingerprints(&sub.Spec)
	if st.AppliedSpec == nil {
		st.AppliedSpec = map[string]string{}
	}
	for g, v := range fp {
		if !plan.skip(g) {
			st.AppliedSpec[g] = v
		}
	}
	kept := st.DriftRestores[:0:0]
	for _, r := range st.DriftRestores {
		switch {
		case slices.Contains(plan.restore, r.Field):
		case slices.Contains(plan.loop, r.Field):
			r.Loop = true
			kept = append(kept, r)
		case now.Sub(r.RestoredAt.Time) < window:
			r.Loop = false
			kept = append(kept, r)
		}
	}
	for _, g := range plan.restore {
		kept = append(kept, billingv1.DriftRestore{Field: g, RestoredAt: metav1.NewTime(now)})
	}
	st.DriftRestores = nil
	if len(kept) > 0 {
		st.DriftRestores = kept
	}
	setSpecDiverged(sub, plan.follow)
}

// setSpecDiverged sets SpecDiverged on a subscription that follows changes made in Stripe, and removes it otherwise.
func setSpecDiverged(sub *billingv1.Subscription, follow []string) {
	if sub.Spec.ChangesInStripe != billingv1.ChangesFollow {
		meta.RemoveStatusCondition(&sub.Status.Conditions, billingv1.ConditionSpecDiverged)
		return
	}
	if len(follow) == 0 {
		setCondition(sub, billingv1.ConditionSpecDiverged, metav1.ConditionFalse, billingv1.ReasonSpecMatches,
			"The spec describes the Stripe subscription")
		return
	}
	setCondition(sub, billingv1.ConditionSpecDiverged, metav1.ConditionTrue, billingv1.ReasonChangedInStripe,
		fmt.Sprintf("Changed in Stripe and kept (changesInStripe: Follow): %s; status shows Stripe's values, and an "+
			"edit of these spec fields is applied", strings.Join(follow, ", ")))
}

// driftLoopError stalls a subscription whose changes in Stripe keep coming back after being restored.
func driftLoopError(sub *billingv1.Subscription, loop []string, window time.Duration) error {
	return &stallError{reason: billingv1.ReasonDriftLoop, msg: fmt.Sprintf("%s changed in Stripe again within %s "+
		"of the operator restoring it; not restoring it again: edit the spec to accept Stripe's values, or set "+
		"spec.changesInStripe: Follow (subscription %s)", strings.Join(loop, ", "), window, sub.Status.ID)}
}
