package controllers

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

// stripeIDs finds a billing object by its Stripe ID, across namespaces, for the event worker's routing of events
// that carry no metadata stamp. It is a plain map fed by the informers' notifications: a client-go index keeps a
// one-element set per value (and controller-runtime's field index two keys per object), which cost about 5 MB of the
// operator's memory per 10,000 objects; this map costs under 1 MB. It may lag the cache by a notification; the
// worker checks what it finds against the cached object and retries an event it cannot route yet, does not start
// before the map has seen the informers' initial lists, and the notification that re-queues the events waiting for
// an object's ID records that ID itself (eventsRoutedBy).
type stripeIDs struct {
	mu   sync.RWMutex
	byID map[stripeIDKey]types.NamespacedName
	// handlers are the informers' registrations of the map's handlers: synced once each has seen its initial list.
	handlers []toolscache.ResourceEventHandlerRegistration
}

// stripeIDKey is a Stripe ID within one kind (a Stripe ID names one object, but the operator may hold two objects
// of different kinds with IDs it did not choose, such as coupons named by their users).
type stripeIDKey struct {
	kind, id string
}

func newStripeIDs() *stripeIDs {
	return &stripeIDs{byID: map[stripeIDKey]types.NamespacedName{}}
}

// watch keeps the map current from the informer of kind k.
func (s *stripeIDs) watch(ctx context.Context, c cache.Cache, k kindEntry) error {
	inf, err := c.GetInformer(ctx, k.newObject(), cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { s.set(k.kind, nil, o) },
		UpdateFunc: func(oldObj, newObj any) {
			s.set(k.kind, oldObj, newObj)
		},
		DeleteFunc: func(o any) { s.set(k.kind, o, nil) },
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers = append(s.handlers, reg)
	return nil
}

// synced reports whether the map holds every object of the informers' initial lists: the caches are synced before
// the controllers start, but the map's handlers see those lists in their own time.
func (s *stripeIDs) synced() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, h := range s.handlers {
		if !h.HasSynced() {
			return false
		}
	}
	return true
}

// set moves an object's entry from its old Stripe ID to its new one (either may be nil or without an ID; the old one
// may be the informer's tombstone of a deletion it saw late).
func (s *stripeIDs) set(kind string, oldObj, newObj any) {
	if d, ok := oldObj.(toolscache.DeletedFinalStateUnknown); ok {
		oldObj = d.Obj
	}
	oldID, newID := idOf(oldObj), idOf(newObj)
	if oldID == newID && newObj != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if oldID != "" {
		key := stripeIDKey{kind: kind, id: oldID}
		if o := oldObj.(client.Object); s.byID[key] == client.ObjectKeyFromObject(o) {
			delete(s.byID, key)
		}
	}
	if newID != "" {
		s.byID[stripeIDKey{kind: kind, id: newID}] = client.ObjectKeyFromObject(newObj.(client.Object))
	}
}

// add records an object's Stripe ID, unless the map has an entry for it already.
func (s *stripeIDs) add(kind string, o billingv1.StripeObject) {
	id := o.GetStripeStatus().ID
	if id == "" {
		return
	}
	key := stripeIDKey{kind: kind, id: id}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[key]; !ok {
		s.byID[key] = client.ObjectKeyFromObject(o)
	}
}

// get returns the object of kind holding Stripe ID id.
func (s *stripeIDs) get(kind, id string) (types.NamespacedName, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	key, ok := s.byID[stripeIDKey{kind: kind, id: id}]
	return key, ok
}

func idOf(o any) string {
	if so, ok := o.(billingv1.StripeObject); ok {
		return so.GetStripeStatus().ID
	}
	return ""
}
