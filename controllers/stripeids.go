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
// worker checks what it finds against the cached object and retries an event it cannot route yet.
type stripeIDs struct {
	mu   sync.RWMutex
	byID map[stripeIDKey]types.NamespacedName
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
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) { s.set(k.kind, nil, o) },
		UpdateFunc: func(oldObj, newObj any) {
			s.set(k.kind, oldObj, newObj)
		},
		DeleteFunc: func(o any) { s.set(k.kind, o, nil) },
	})
	return err
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
