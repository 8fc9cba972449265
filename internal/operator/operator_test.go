package operator

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stripe-operator/stripe-operator/controllers"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
	"github.com/stripe-operator/stripe-operator/webhookreceiver"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// The operator registers its own webhook endpoint once, stores the secret, and replaces an endpoint whose secret
// it lost.
func TestWebhookEndpointRegistration(t *testing.T) {
	sim := stripesim.New(stripesim.Options{RateLimitOff: true})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "op")
	if err != nil {
		t.Fatal(err)
	}
	ref := types.NamespacedName{Namespace: ns, Name: credentials.DefaultSecretName}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ref.Name},
		Data: map[string][]byte{credentials.APIKeyField: []byte("sk_test_registration")}}
	if err := env.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	const url = "https://operator.example.com/webhooks/stripe"
	run := func() {
		t.Helper()
		mctx, cancel := context.WithCancel(ctx)
		mgr, err := New(mctx, env.Config, Config{MetricsAddr: "0", ProbeAddr: "0", WebhookAddr: "0",
			SkipNameValidation: true, CredentialsSecret: ref, NamespaceSecretName: ref.Name,
			Stripe: stripe.Config{APIBase: srv.URL}, WebhookPublicURL: url,
			Controllers: controllers.Options{ClusterName: "test"}})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- mgr.Start(mctx) }()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if err := env.Client.Get(ctx, ref, secret); err == nil &&
				strings.HasPrefix(string(secret.Data[webhookreceiver.SecretsField]), "whsec_") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond) // let a second registration, if any, happen
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	endpoints := func() []*stripego.WebhookEndpoint {
		k, _ := stripe.ParseKey("sk_test_registration")
		c := stripe.NewFactory(stripe.Config{APIBase: srv.URL}).Client(k, "")
		var out []*stripego.WebhookEndpoint
		it := c.API.WebhookEndpoints.List(&stripego.WebhookEndpointListParams{})
		for it.Next() {
			out = append(out, it.WebhookEndpoint())
		}
		return out
	}

	run()
	eps := endpoints()
	first := string(secret.Data[webhookreceiver.SecretsField])
	if len(eps) != 1 || eps[0].URL != url || eps[0].APIVersion != stripego.APIVersion || !strings.HasPrefix(first, "whsec_") {
		t.Fatalf("after the first start: endpoints %+v, secret %q", eps, first)
	}
	run()
	if eps := endpoints(); len(eps) != 1 || string(secret.Data[webhookreceiver.SecretsField]) != first {
		t.Errorf("a restart registered again: %d endpoints", len(eps))
	}
	// The secret was lost: the endpoint is replaced and the new secret stored.
	secret.Data[webhookreceiver.SecretsField] = nil
	if err := env.Client.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	run()
	eps = endpoints()
	now := string(secret.Data[webhookreceiver.SecretsField])
	if len(eps) != 1 || eps[0].ID == "" || now == first || !strings.HasPrefix(now, "whsec_") {
		t.Errorf("after losing the secret: %d endpoints, secret %q", len(eps), now)
	}
}
