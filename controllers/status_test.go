package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

func TestConditionSetters(t *testing.T) {
	c := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
	setReconciling(c, billingv1.ReasonCreating, "creating")
	if isStalled(c) || readyOf(c) != (readyState{metav1.ConditionFalse, billingv1.ReasonCreating}) ||
		c.Status.ObservedGeneration != 0 {
		t.Errorf("reconciling: %+v", c.Status)
	}
	setStalled(c, billingv1.ReasonInvalidRequest, "bad")
	if !isStalled(c) || c.Status.ObservedGeneration != 3 || len(c.Status.Conditions) != 2 {
		t.Errorf("stalled: %+v", c.Status)
	}
	setReady(c, "ok")
	if isStalled(c) || readyOf(c).status != metav1.ConditionTrue || len(c.Status.Conditions) != 1 {
		t.Errorf("ready: %+v", c.Status)
	}
	for _, cond := range c.Status.Conditions {
		if cond.ObservedGeneration != 3 {
			t.Errorf("%s without the generation", cond.Type)
		}
	}
}

func TestResyncIntervalAndInSync(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r := &Reconciler[*billingv1.Customer]{Options: Options{ResyncInterval: 10 * time.Hour,
		Now: func() time.Time { return now }}}
	c := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Generation: 1}}
	setReady(c, "ok")
	synced := metav1.NewTime(now.Add(-2 * time.Hour))
	c.Status.LastSyncedAt = &synced
	if ok, _ := r.inSync(c); !ok {
		t.Error("synced 2 h ago with a 10 h interval: should be in sync")
	}
	// The per-object annotation shortens the interval, and inSync honours it.
	c.Annotations = map[string]string{billingv1.AnnotationResyncInterval: "1h"}
	if ok, _ := r.inSync(c); ok {
		t.Error("synced 2 h ago with a 1 h annotation: should be due")
	}
	if d := r.resyncAfter(c); d < 54*time.Minute || d > 66*time.Minute {
		t.Errorf("jittered resync %v, want 1 h ± 10%%", d)
	}
	c.Annotations[billingv1.AnnotationResyncInterval] = "5s" // below the minimum: ignored
	if r.resyncInterval(c) != 10*time.Hour {
		t.Errorf("interval %v", r.resyncInterval(c))
	}
	// A reconcile request not yet handled is due at once.
	c.Annotations = map[string]string{billingv1.AnnotationReconcileRequestedAt: "now"}
	if ok, _ := r.inSync(c); ok {
		t.Error("a pending reconcile request was skipped")
	}
}
