package controllers

import (
	"context"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// resyncScheduler is what a kind's loop tells the sweep: whether an object is due for its periodic resync, and how
// often to look.
type resyncScheduler interface {
	resyncDue(obj client.Object) bool
	sweepEvery() time.Duration
}

// resyncSweep is the source of a kind's periodic resyncs. A pass that leaves an object in sync does not re-queue it
// with a delay: one delayed work-queue item per object (the item, its place in the queue's ordering,
// controller-runtime's per-item bookkeeping) held about 4 MB for 10,000 objects, for hours. Instead, every
// sweepEvery the sweep looks at the kind's objects in the cache and queues, at low priority (after every change a
// person made), those whose resync has come (status.lastSyncedAt plus the jittered interval; see
// Reconciler.resyncAt). After a restart, objects in sync are looked at once from the initial list, cost no Stripe
// call, and wait for their time.
func resyncSweep(c cache.Cache, obj client.Object, s resyncScheduler) source.Source {
	return source.Func(func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		if _, err := cachedObjects(ctx, c, obj); err != nil {
			return err
		}
		go func() {
			t := time.NewTicker(s.sweepEvery())
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if items, err := cachedObjects(ctx, c, obj); err == nil {
						sweep(items, q, s)
					}
				}
			}
		}()
		return nil
	})
}

// sweep queues the objects among items that are due for their resync.
func sweep(items []any, q workqueue.TypedRateLimitingInterface[reconcile.Request], s resyncScheduler) {
	var due []reconcile.Request
	for _, it := range items {
		if o, ok := it.(client.Object); ok && s.resyncDue(o) {
			due = append(due, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
		}
	}
	if len(due) == 0 {
		return
	}
	if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
		low := handler.LowPriority
		pq.AddWithOpts(priorityqueue.AddOpts{Priority: &low}, due...)
		return
	}
	for _, r := range due {
		q.Add(r)
	}
}
