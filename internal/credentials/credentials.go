// Package credentials finds the Stripe API key for a namespace: the namespace's own Secret (a team's restricted key)
// if it has one, else the operator-wide Secret. Keys are read through the manager's cache, so a rotated Secret takes
// effect without a restart. A key Stripe refused with 401 is not used again until its Secret changes.
package credentials

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// Secret keys.
const (
	// APIKeyField holds the secret (sk_) or restricted (rk_) key.
	APIKeyField = "apiKey"
	// AccountField optionally names the Stripe account (acct_...), so keys of one account share one rate budget.
	AccountField = "account"
	// DefaultSecretName is the name of the per-namespace override and, by default, of the operator-wide Secret.
	DefaultSecretName = "stripe-credentials" //nolint:gosec // G101: a Secret's name, not a credential
)

// Error is a credentials problem that a person must fix; Reason is the condition reason.
type Error struct {
	Reason  string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Resolver finds the client for a namespace.
type Resolver struct {
	// Reader reads Secrets (the manager's cache).
	Reader client.Reader
	// Live, if set, confirms with the API server that a namespace has no Secret of its own before the operator-wide
	// key is used for it: a Secret applied just before the object may not be in the cache yet, and the object would
	// be created in the operator-wide Stripe account instead of the namespace's. A confirmed absence is remembered
	// for absentFor, so that namespaces using the operator-wide key cost one read per half minute.
	Live client.Reader
	// Default is the operator-wide Secret.
	Default types.NamespacedName
	// NamespaceSecretName is the name of the per-namespace override Secret.
	NamespaceSecretName string
	// AllowLiveMode permits sk_live_ and rk_live_ keys.
	AllowLiveMode bool
	// Factory builds the clients.
	Factory *stripe.Factory

	mu       sync.Mutex
	rejected map[types.UID]string // Secret UID -> resourceVersion whose key Stripe refused with 401
	absent   map[string]time.Time // namespace -> when the API server last confirmed it has no Secret
	// now is the clock (time.Now when nil).
	now func() time.Time
}

// absentFor is how long a namespace confirmed to have no Secret of its own is not asked again. The cache is read
// first every time, so a Secret it has seen is used at once.
const absentFor = 30 * time.Second

// Resolved is the outcome of a lookup.
type Resolved struct {
	Client *stripe.Client
	// Secret is the Secret the key came from.
	Secret types.NamespacedName
	uid    types.UID
	rv     string
}

// For returns the client to use for objects in namespace.
func (r *Resolver) For(ctx context.Context, namespace string) (*Resolved, error) {
	secret := &corev1.Secret{}
	ref := types.NamespacedName{Namespace: namespace, Name: r.NamespaceSecretName}
	err := r.Reader.Get(ctx, ref, secret)
	if apierrors.IsNotFound(err) && r.Live != nil && ref != r.Default && !r.knownAbsent(namespace) {
		if err = r.Live.Get(ctx, ref, secret); apierrors.IsNotFound(err) {
			r.markAbsent(namespace)
		}
	}
	if apierrors.IsNotFound(err) {
		ref = r.Default
		err = r.Reader.Get(ctx, ref, secret)
		if apierrors.IsNotFound(err) {
			return nil, &Error{Reason: billingv1.ReasonCredentialsNotFound, Message: fmt.Sprintf(
				"no Stripe credentials: create Secret %s/%s (or the operator-wide %s) with the key %q",
				namespace, r.NamespaceSecretName, r.Default, APIKeyField)}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s: %w", ref, err)
	}
	raw, ok := secret.Data[APIKeyField]
	if !ok || len(raw) == 0 {
		return nil, &Error{Reason: billingv1.ReasonCredentialsNotFound,
			Message: fmt.Sprintf("Secret %s has no %q key", ref, APIKeyField)}
	}
	key, err := stripe.ParseKey(string(raw))
	if err != nil {
		return nil, &Error{Reason: billingv1.ReasonCredentialsNotFound,
			Message: fmt.Sprintf("Secret %s: %v", ref, err)}
	}
	if key.Live && !r.AllowLiveMode {
		return nil, &Error{Reason: billingv1.ReasonLiveModeNotAllowed, Message: fmt.Sprintf(
			"Secret %s holds a live-mode key and the operator was not started with --allow-live-mode", ref)}
	}
	r.mu.Lock()
	rv, refused := r.rejected[secret.UID]
	r.mu.Unlock()
	if refused && rv == secret.ResourceVersion {
		return nil, &Error{Reason: billingv1.ReasonAuthenticationFailed, Message: fmt.Sprintf(
			"Stripe refused the key %s in Secret %s (401); it is not used again until the Secret changes", key, ref)}
	}
	return &Resolved{Client: r.Factory.Client(key, string(secret.Data[AccountField])), Secret: ref,
		uid: secret.UID, rv: secret.ResourceVersion}, nil
}

// Refused records that Stripe answered 401 to the resolved key: it is not used until its Secret changes.
func (r *Resolver) Refused(res *Resolved) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rejected == nil {
		r.rejected = map[types.UID]string{}
	}
	r.rejected[res.uid] = res.rv
}

// AsError returns the credentials error in err, if any.
func AsError(err error) (*Error, bool) {
	var ce *Error
	ok := errors.As(err, &ce)
	return ce, ok
}

func (r *Resolver) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// knownAbsent reports whether the API server confirmed within absentFor that namespace has no Secret of its own.
func (r *Resolver) knownAbsent(namespace string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.absent[namespace]
	return ok && r.clock().Sub(at) < absentFor
}

func (r *Resolver) markAbsent(namespace string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock()
	if r.absent == nil {
		r.absent = map[string]time.Time{}
	}
	if len(r.absent) >= 1024 {
		for ns, at := range r.absent {
			if now.Sub(at) >= absentFor {
				delete(r.absent, ns)
			}
		}
	}
	r.absent[namespace] = now
}
