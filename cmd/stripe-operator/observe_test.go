package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// stripeWrites counts the POST and DELETE requests stripesim answered.
func stripeWrites(sim *stripesim.Sim) int64 {
	var n int64
	for pattern, byStatus := range sim.Stats() {
		if strings.HasPrefix(pattern, "POST ") || strings.HasPrefix(pattern, "DELETE ") {
			for _, c := range byStatus {
				n += c
			}
		}
	}
	return n
}

// --observe-only observes every object whatever its managementPolicy: an adopted Customer is read and its drift
// reported, a Customer naming no Stripe object is not created, and nothing is written to Stripe.
func TestBinaryObserveOnly(t *testing.T) {
	bin := buildBinary(t)
	sim := stripesim.New(stripesim.Options{RateLimitOff: true})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	const key = "sk_test_observe_only_flag"
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v1/customers",
		strings.NewReader(url.Values{"email": {"old@example.com"}}.Encode()))
	req.SetBasicAuth(key, "")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	ids := customerIDs(t, srv.URL, key)
	if len(ids) != 1 {
		t.Fatalf("stripesim holds customers %v", ids)
	}

	ctx := t.Context()
	ns, err := env.Namespace(ctx, "observe")
	if err != nil {
		t.Fatal(err)
	}
	adopted := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "adopted"},
		Spec: billingv1.CustomerSpec{Email: "new@example.com", Adopt: &billingv1.CustomerAdopt{ID: ids[0]}}}
	fresh := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "fresh"},
		Spec: billingv1.CustomerSpec{Email: "fresh@example.com"}}
	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: credentials.DefaultSecretName},
			Data: map[string][]byte{credentials.APIKeyField: []byte(key)}}, adopted, fresh} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	before := stripeWrites(sim)

	var logs testenv.SyncBuffer
	cmd := exec.CommandContext(ctx, bin, "--kubeconfig", env.Kubeconfig, "--observe-only",
		"--stripe-api-base", srv.URL, "--credentials-secret", ns+"/"+credentials.DefaultSecretName,
		"--cluster-name", "observe-test", "--health-probe-bind-address", testenv.FreeAddr(t),
		"--metrics-bind-address", "0", "--webhook-bind-address", "0", "--webhook-events=false")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()

	reason := func(c *billingv1.Customer, typ string) (string, error) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
			return "", err
		}
		cond := meta.FindStatusCondition(c.Status.Conditions, typ)
		if cond == nil {
			return "", fmt.Errorf("%s has no %s condition: %+v", c.Name, typ, c.Status.Conditions)
		}
		return cond.Reason, nil
	}
	testenv.Eventually(t, time.Minute, func() error {
		if r, err := reason(adopted, billingv1.ConditionReady); err != nil || r != billingv1.ReasonObserved {
			return fmt.Errorf("adopted: Ready %s %w; logs:\n%s", r, err, logs.String())
		}
		if r, err := reason(fresh, billingv1.ConditionStalled); err != nil || r != billingv1.ReasonNothingToObserve {
			return fmt.Errorf("fresh: Stalled %s %w", r, err)
		}
		return nil
	})
	if d := adopted.Status.Drift; len(d) != 1 || d[0] != (billingv1.FieldDrift{Field: "email",
		Spec: "new@example.com", Stripe: "old@example.com"}) {
		t.Errorf("drift %+v", d)
	}
	if n := stripeWrites(sim) - before; n != 0 {
		t.Errorf("%d Stripe writes with --observe-only", n)
	}
	if got := customerIDs(t, srv.URL, key); len(got) != 1 {
		t.Errorf("stripesim holds customers %v after --observe-only", got)
	}
}

// customerIDs lists the customers stripesim holds for key.
func customerIDs(t *testing.T, base, key string) []string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/v1/customers?limit=100", nil)
	req.SetBasicAuth(key, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var l struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(l.Data))
	for _, c := range l.Data {
		ids = append(ids, c.ID)
	}
	return ids
}
