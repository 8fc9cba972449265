package credentials

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/stripe-operator/stripe-operator/internal/stripe"
)

// countingReader counts the reads it passes on.
type countingReader struct {
	client.Reader
	gets int
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object,
	opts ...client.GetOption) error {
	c.gets++
	return c.Reader.Get(ctx, key, obj, opts...)
}

func secret(ns, key string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: DefaultSecretName},
		Data: map[string][]byte{APIKeyField: []byte(key)}}
}

// A namespace's Secret that the cache has not seen yet is found on the API server: the operator-wide key is used
// only for a namespace the API server confirms has none, and that confirmation is not asked again for half a
// minute.
func TestNamespaceSecretNotYetCached(t *testing.T) {
	operatorWide := secret("operator", "sk_test_platform")
	cached := fake.NewClientBuilder().WithObjects(operatorWide).Build()
	live := &countingReader{Reader: fake.NewClientBuilder().WithObjects(operatorWide,
		secret("team-a", "sk_test_team_a")).Build()}
	now := time.Unix(1_800_000_000, 0)
	r := &Resolver{Reader: cached, Live: live, Default: types.NamespacedName{Namespace: "operator",
		Name: DefaultSecretName}, NamespaceSecretName: DefaultSecretName, Factory: stripe.NewFactory(stripe.Config{}),
		now: func() time.Time { return now }}

	res, err := r.For(t.Context(), "team-a")
	if err != nil {
		t.Fatal(err)
	}
	if res.Secret.Namespace != "team-a" {
		t.Errorf("team-a's objects would use the key of %s", res.Secret)
	}
	for range 3 {
		if res, err = r.For(t.Context(), "team-b"); err != nil || res.Secret != r.Default {
			t.Fatalf("team-b: %v, %v", res, err)
		}
	}
	if live.gets != 2 {
		t.Errorf("%d reads from the API server, want 2 (team-a, then team-b once)", live.gets)
	}
	now = now.Add(absentFor)
	if _, err := r.For(t.Context(), "team-b"); err != nil {
		t.Fatal(err)
	}
	if live.gets != 3 {
		t.Errorf("%d reads from the API server, want 3 (team-b asked again after %v)", live.gets, absentFor)
	}
}
