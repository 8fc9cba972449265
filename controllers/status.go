package controllers

import (
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
	st := obj.GetStripeStatus()
	setCondition(obj, billingv1.ConditionReady, metav1.ConditionTrue, billingv1.ReasonSynced, msg)
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
