package controllers

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

// The kstatus conditions. Each setter leaves the three in a consistent state: Ready says whether Stripe matches the
// spec; Reconciling and Stalled are abnormal-true and removed when they do not apply. Every condition carries the
// object's generation. status.observedGeneration moves only when the reconcile of a generation reached an outcome
// (Ready, or Stalled: a person must act), so kstatus reports InProgress until then.

func setCondition(obj billingv1.StripeObject, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&obj.GetStripeStatus().Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: obj.GetGeneration(),
	})
}

// setReady marks the object in sync with Stripe.
func setReady(obj billingv1.StripeObject, msg string) {
	setReadyReason(obj, billingv1.ReasonSynced, msg)
}

// setReadyReason marks the object Ready with a reason: Synced, or Observed for an object observed only.
func setReadyReason(obj billingv1.StripeObject, reason, msg string) {
	st := obj.GetStripeStatus()
	setCondition(obj, billingv1.ConditionReady, metav1.ConditionTrue, reason, msg)
	meta.RemoveStatusCondition(&st.Conditions, billingv1.ConditionReconciling)
	meta.RemoveStatusCondition(&st.Conditions, billingv1.ConditionStalled)
	st.ObservedGeneration = obj.GetGeneration()
}

// setReconciling marks work in flight that will go on by itself (creating, waiting on a dependency, retrying).
func setReconciling(obj billingv1.StripeObject, reason, msg string) {
	st := obj.GetStripeStatus()
	setCondition(obj, billingv1.ConditionReady, metav1.ConditionFalse, reason, msg)
	setCondition(obj, billingv1.ConditionReconciling, metav1.ConditionTrue, reason, msg)
	meta.RemoveStatusCondition(&st.Conditions, billingv1.ConditionStalled)
}

// setStalled marks an object that needs a person: the spec, the credentials or Stripe must change first.
func setStalled(obj billingv1.StripeObject, reason, msg string) {
	st := obj.GetStripeStatus()
	setCondition(obj, billingv1.ConditionReady, metav1.ConditionFalse, reason, msg)
	setCondition(obj, billingv1.ConditionStalled, metav1.ConditionTrue, reason, msg)
	meta.RemoveStatusCondition(&st.Conditions, billingv1.ConditionReconciling)
	st.ObservedGeneration = obj.GetGeneration()
}

// waiting reports whether a Ready condition is a wait for referenced objects (Reconciling, or Stalled once the wait
// outlasted the grace period).
func waiting(c *metav1.Condition) bool {
	return c != nil && c.Status == metav1.ConditionFalse &&
		(c.Reason == billingv1.ReasonDependencyNotReady || c.Reason == billingv1.ReasonReferenceNotFound)
}

// waitingSince is when obj began waiting for referenced objects: the transition of its Ready condition into the
// wait (setWaiting starts it afresh), or now when it is not waiting yet.
func waitingSince(obj billingv1.StripeObject, now time.Time) time.Time {
	if c := meta.FindStatusCondition(obj.GetStripeStatus().Conditions, billingv1.ConditionReady); waiting(c) {
		return c.LastTransitionTime.Time
	}
	return now
}

// setWaiting marks a wait for referenced objects (DependencyNotReady): Reconciling, with Ready's transition time
// starting when the wait starts, so that the grace period is counted from then.
func setWaiting(obj billingv1.StripeObject, msg string) {
	st := obj.GetStripeStatus()
	if !waiting(meta.FindStatusCondition(st.Conditions, billingv1.ConditionReady)) {
		meta.RemoveStatusCondition(&st.Conditions, billingv1.ConditionReady)
	}
	setReconciling(obj, billingv1.ReasonDependencyNotReady, msg)
}

// setDrift records, for an observed object, the fields in which Stripe differs from the spec (status.drift, at
// most billingv1.MaxDrift) and the InSync condition. The operator's metadata stamp (k8s_*) is left out: the spec
// cannot change it, and Manage writes it with the first update.
func setDrift(obj billingv1.StripeObject, drift []billingv1.FieldDrift) {
	var out []billingv1.FieldDrift
	for _, d := range drift {
		if !strings.HasPrefix(d.Field, "metadata.k8s_") {
			out = append(out, billingv1.FieldDrift{Field: clip(d.Field, 256), Spec: clip(d.Spec, 512),
				Stripe: clip(d.Stripe, 512)})
		}
	}
	st := obj.GetStripeStatus()
	if len(out) == 0 {
		st.Drift = nil
		setCondition(obj, billingv1.ConditionInSync, metav1.ConditionTrue, billingv1.ReasonNoDrift,
			"Stripe matches the spec")
		return
	}
	fields := make([]string, 0, len(out))
	for _, d := range out {
		fields = append(fields, d.Field)
	}
	st.Drift = out[:min(len(out), billingv1.MaxDrift)]
	setCondition(obj, billingv1.ConditionInSync, metav1.ConditionFalse, billingv1.ReasonDrifted,
		clip(fmt.Sprintf("%d fields differ from the spec (%s); switching to Manage writes them", len(out),
			strings.Join(fields, ", ")), 1024))
}

// clip shortens s to at most n bytes (a status field's bound), on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// readyState is what an Event on a transition compares.
type readyState struct {
	status metav1.ConditionStatus
	reason string
}

func readyOf(obj billingv1.StripeObject) readyState {
	c := meta.FindStatusCondition(obj.GetStripeStatus().Conditions, billingv1.ConditionReady)
	if c == nil {
		return readyState{}
	}
	return readyState{status: c.Status, reason: c.Reason}
}

func isStalled(obj billingv1.StripeObject) bool {
	return meta.IsStatusConditionTrue(obj.GetStripeStatus().Conditions, billingv1.ConditionStalled)
}
