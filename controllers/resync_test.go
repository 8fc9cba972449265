package controllers

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// A periodic resync comes from the sweep of the cache, with no work-queue item waiting for it: a Customer whose
// last sync is older than the interval (the suite's is an hour) is read from Stripe again within a few sweeps,
// although nothing re-queued it (a status write alone does not); one synced recently is not read.
func TestResyncSweep(t *testing.T) {
	ctx, ns := newNamespace(t)
	due, fresh := newCustomer(ns, "due"), newCustomer(ns, "fresh")
	create(t, due, fresh)
	due = waitReady(t, ctx, due)
	waitReady(t, ctx, fresh)

	reads := calls("GET /v1/customers/{id}")
	old := metav1.NewTime(time.Now().Add(-2 * time.Hour).Truncate(time.Second))
	patch := client.MergeFrom(due.DeepCopy())
	due.Status.LastSyncedAt = &old
	if err := env.Client.Status().Patch(ctx, due, patch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, func() error {
		got := &billingv1.Customer{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(due), got); err != nil {
			return err
		}
		if s := got.Status.LastSyncedAt; s == nil || !s.After(old.Time) {
			return fmt.Errorf("not resynced: lastSyncedAt %v", s)
		}
		return nil
	})
	// Another sweep or two: the resynced Customer is not due again, nor is the fresh one.
	time.Sleep(2500 * time.Millisecond)
	if n := calls("GET /v1/customers/{id}") - reads; n != 1 {
		t.Errorf("%d Stripe reads of customers, want 1 (the one due)", n)
	}
}
