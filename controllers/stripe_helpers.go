package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// desiredMetadata is the spec's metadata plus the operator's stamp.
func desiredMetadata(spec billingv1.Metadata, stamp map[string]string) map[string]string {
	out := make(map[string]string, len(spec)+len(stamp))
	for k, v := range spec {
		out[k] = v
	}
	for k, v := range stamp {
		out[k] = v
	}
	return out
}

// metadataDiff adds to p the metadata changes from have to want: changed and new keys, and "" for keys Stripe has
// that the spec no longer names (Stripe unsets a key sent empty). When creating, every wanted key is sent.
func metadataDiff(p *stripego.Params, want, have map[string]string, creating bool, changed map[string]string) {
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if v := want[k]; creating || have[k] != v {
			p.AddMetadata(k, v)
			if !creating {
				changed["metadata."+k] = have[k] + "->" + v
			}
		}
	}
	if creating {
		return
	}
	for k, v := range have {
		if _, ok := want[k]; !ok {
			p.AddMetadata(k, "")
			changed["metadata."+k] = v + "->"
		}
	}
}

// driftOf turns the changes an update would send (field -> "<Stripe's value>-><the spec's value>", as the params
// functions record them) into status.drift entries, sorted by field. A value without "->" is the spec's.
func driftOf(changed map[string]string) []billingv1.FieldDrift {
	out := make([]billingv1.FieldDrift, 0, len(changed))
	for field, v := range changed {
		d := billingv1.FieldDrift{Field: field, Spec: v}
		if have, want, ok := strings.Cut(v, "->"); ok {
			d.Stripe, d.Spec = have, want
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b billingv1.FieldDrift) int { return strings.Compare(a.Field, b.Field) })
	return out
}

// stripeObject is what recovery needs of a listed object.
type stripeObject struct {
	ID       string
	Metadata map[string]string
}

// toStripeObjects converts a listed page.
func toStripeObjects[T any](data []T, idOf func(T) (string, map[string]string)) []stripeObject {
	out := make([]stripeObject, 0, len(data))
	for _, o := range data {
		id, md := idOf(o)
		out = append(out, stripeObject{ID: id, Metadata: md})
	}
	return out
}

// findByUID pages through a created-since list (strongly consistent, unlike Search) and returns the newest object
// stamped with uid that is not in exclude, or "". page fetches one page with lp.
func findByUID(ctx context.Context, c *stripe.Client, resource string, lp *stripego.ListParams, uid string,
	exclude []string, page func() ([]stripeObject, bool, error)) (string, error) {
	lp.Single = true
	lp.Limit = stripego.Int64(100)
	for {
		var more bool
		objs, err := stripe.Call(ctx, c, stripe.Op{Resource: resource, Operation: stripe.OpList}, lp,
			func() ([]stripeObject, error) {
				objs, m, err := page()
				more = m
				return objs, err
			})
		if err != nil {
			return "", err
		}
		for _, o := range objs { // newest first
			if o.Metadata[billingv1.MetadataUID] == uid && !slices.Contains(exclude, o.ID) {
				return o.ID, nil
			}
		}
		if !more || len(objs) == 0 {
			return "", nil
		}
		lp.StartingAfter = stripego.String(objs[len(objs)-1].ID)
	}
}

// never is the part of External for a kind that is never replaced by a successor (only Prices are).
type never[T billingv1.StripeObject] struct{}

// Replaced implements External; nothing is ever replaced.
func (never[T]) Replaced(context.Context, *stripe.Client, T, string, string) error { return nil }

// standalone is the part of External for a kind that references no other billing object.
type standalone[T billingv1.StripeObject] struct{ never[T] }

// Dependencies implements External; there are none.
func (standalone[T]) Dependencies(context.Context, T) (bool, string, error) { return true, "", nil }

// Stale implements External; nothing referenced can change under it.
func (standalone[T]) Stale(context.Context, T) (bool, error) { return false, nil }

// withPrevious records oldID in a replaced object's status.previousIDs (oldest first, at most 100).
func withPrevious(ids []string, oldID string) []string {
	if slices.Contains(ids, oldID) {
		return ids
	}
	ids = append(ids, oldID)
	if n := len(ids); n > 100 {
		ids = ids[n-100:]
	}
	return ids
}

// observed is the Stripe object Observe read, or a fresh read by get when the observation carries none.
func observed[T any](ctx context.Context, c *stripe.Client, id string, obs Observation,
	get func(context.Context, *stripe.Client, string, stripe.Priority) (*T, error)) (*T, error) {
	if cur, ok := obs.Current.(*T); ok && cur != nil {
		return cur, nil
	}
	return get(ctx, c, id, stripe.PriorityHigh)
}

// updateKey is the idempotency key of an update of obj sending the changed fields. Besides the generation and the
// changes, it names what the update answers: the sync request (the event of a change made in Stripe) and the last
// successful sync. Both stay the same across retries of one update, and move once a pass succeeds: restoring the
// same change made in Stripe a second time must not replay the first restore's key (Stripe would answer with the
// saved response and apply nothing).
func updateKey(obj billingv1.StripeObject, changed map[string]string) string {
	st := obj.GetStripeStatus()
	synced := ""
	if st.LastSyncedAt != nil {
		synced = st.LastSyncedAt.UTC().Format(time.RFC3339)
	}
	return stripe.IdempotencyKey(string(obj.GetUID()), "update", obj.GetGeneration(), stripe.FormFingerprint(changed),
		st.SyncRequest, synced)
}

// missingRefError is a reference to an object that does not exist in the namespace: the loop says so instead of
// waiting silently, and is re-queued when an object of that kind is created.
type missingRefError struct {
	kind, namespace, name string
}

func (e *missingRefError) Error() string {
	return fmt.Sprintf("%s %s/%s does not exist; create it or fix the reference", e.kind, e.namespace, e.name)
}

// refResolver resolves references to billing objects of the same namespace from the cache; a miss is confirmed with
// the API server, so an object the cache has not seen yet (applied together with its referrer) is waited for, not
// reported missing.
type refResolver struct {
	cache client.Reader
	live  client.Reader
}

// id returns the Stripe ID of the referenced object, or a message while it has none yet, or a *missingRefError when
// it does not exist.
func (r refResolver) id(ctx context.Context, namespace, name string, into billingv1.StripeObject) (string, string,
	error) {
	kind := kindName(into)
	key := types.NamespacedName{Namespace: namespace, Name: name}
	err := r.cache.Get(ctx, key, into)
	if apierrors.IsNotFound(err) && r.live != nil {
		err = r.live.Get(ctx, key, into)
	}
	if apierrors.IsNotFound(err) {
		return "", "", &missingRefError{kind: kind, namespace: namespace, name: name}
	}
	if err != nil {
		return "", "", err
	}
	if id := into.GetStripeStatus().ID; id != "" {
		return id, "", nil
	}
	msg := fmt.Sprintf("%s %s/%s exists but has no Stripe ID yet", kind, namespace, name)
	if c := meta.FindStatusCondition(into.GetStripeStatus().Conditions, billingv1.ConditionReady); c != nil {
		msg += fmt.Sprintf(" (its Ready condition: %s, %s)", c.Status, c.Reason)
	}
	return "", msg, nil
}

// ignoreMissingRef drops a *missingRefError, for checks that have nothing to say about a missing reference.
func ignoreMissingRef(err error) error {
	var mr *missingRefError
	if errors.As(err, &mr) {
		return nil
	}
	return err
}
