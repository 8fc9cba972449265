package operator

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/webhookreceiver"
)

// registrar registers the operator's own webhook endpoint with Stripe (leader only) and stores its signing secret
// in the credentials Secret, where the receiver reads it.
type registrar struct {
	url      string
	secret   types.NamespacedName
	client   client.Client
	resolver *credentials.Resolver
	log      logr.Logger
}

func (r *registrar) NeedLeaderElection() bool { return true }

// Start registers, retrying with backoff until it succeeds or ctx ends.
func (r *registrar) Start(ctx context.Context) error {
	wait := time.Second
	for {
		err := r.register(ctx)
		if err == nil {
			return nil
		}
		r.log.Error(err, "Registering the webhook endpoint failed; retrying", "url", r.url, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Minute)
	}
}

func (r *registrar) register(ctx context.Context) error {
	creds, err := r.resolver.For(ctx, r.secret.Namespace)
	if err != nil {
		return err
	}
	s := &corev1.Secret{}
	if err := r.client.Get(ctx, r.secret, s); err != nil {
		return fmt.Errorf("reading Secret %s: %w", r.secret, err)
	}
	have := strings.TrimSpace(string(s.Data[webhookreceiver.SecretsField])) != ""
	whsec, err := stripe.EnsureWebhookEndpoint(ctx, creds.Client, r.url, webhookreceiver.HandledTypes, have)
	if err != nil {
		return err
	}
	if whsec == "" {
		r.log.Info("The webhook endpoint is registered", "url", r.url)
		return nil
	}
	// The new secret goes first; older ones stay until removed, so deliveries signed with them still verify.
	patch := client.MergeFrom(s.DeepCopy())
	secrets := whsec
	if have {
		secrets += "," + string(s.Data[webhookreceiver.SecretsField])
	}
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	s.Data[webhookreceiver.SecretsField] = []byte(secrets)
	if err := r.client.Patch(ctx, s, patch); err != nil {
		return fmt.Errorf("storing the signing secret in Secret %s: %w", r.secret, err)
	}
	r.log.Info("Registered the webhook endpoint and stored its signing secret", "url", r.url, "secret", r.secret)
	return nil
}
