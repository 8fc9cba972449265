package crd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

func newNamespace(t *testing.T) (context.Context, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	ns, err := env.Namespace(ctx, "crd")
	if err != nil {
		t.Fatal(err)
	}
	return ctx, ns
}

// readSamples decodes every object in config/samples except the kustomization.
func readSamples(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(), "config", "samples")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(u.Object) > 0 {
				objs = append(objs, u)
			}
		}
	}
	return objs
}

func TestSamplesAreAccepted(t *testing.T) {
	ctx, ns := newNamespace(t)
	samples := readSamples(t)
	kinds := map[string]bool{}
	for _, u := range samples {
		u.SetNamespace(ns)
		if err := env.Client.Create(ctx, u); err != nil {
			t.Errorf("sample %s %s refused: %v", u.GetKind(), u.GetName(), err)
		}
		kinds[u.GetKind()] = true
	}
	for _, k := range []string{"Customer", "Product", "Price", "Subscription", "Coupon", "PromotionCode", "TaxRate",
		"Meter", "BillingPortalConfiguration", "EntitlementFeature"} {
		if !kinds[k] {
			t.Errorf("config/samples has no %s", k)
		}
	}
}

func TestDefaultsAreApplied(t *testing.T) {
	ctx, ns := newNamespace(t)
	cus := validCustomer(ns, "defaults")
	prod := validProduct(ns, "defaults")
	price := validPrice(ns, "defaults")
	price.Spec.Recurring = &billingv1.Recurring{Interval: billingv1.IntervalMonth}
	sub := validSubscription(ns, "defaults")
	sub.Spec.Items[0].Quantity = nil
	for _, o := range []client.Object{cus, prod, price, sub} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatalf("create %T: %v", o, err)
		}
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"customer deletionPolicy", cus.Spec.DeletionPolicy, billingv1.CustomerOrphan},
		{"product deletionPolicy", prod.Spec.DeletionPolicy, billingv1.Archive},
		{"product active", prod.Spec.Active, ptr.To(true)},
		{"price deletionPolicy", price.Spec.DeletionPolicy, billingv1.Archive},
		{"price active", price.Spec.Active, ptr.To(true)},
		{"price intervalCount", price.Spec.Recurring.IntervalCount, int64(1)},
		{"price usageType", price.Spec.Recurring.UsageType, billingv1.UsageLicensed},
		{"subscription deletionPolicy", sub.Spec.DeletionPolicy, billingv1.SubscriptionCancel},
		{"subscription priceChangePolicy", sub.Spec.PriceChangePolicy, billingv1.PriceChangeKeep},
		{"subscription collectionMethod", sub.Spec.CollectionMethod, billingv1.ChargeAutomatically},
		{"subscription paymentBehavior", sub.Spec.PaymentBehavior, billingv1.AllowIncomplete},
		{"subscription prorationBehavior", sub.Spec.ProrationBehavior, billingv1.CreateProrations},
		{"customer managementPolicy", cus.Spec.ManagementPolicy, billingv1.ManagementManage},
		{"product managementPolicy", prod.Spec.ManagementPolicy, billingv1.ManagementManage},
		{"price managementPolicy", price.Spec.ManagementPolicy, billingv1.ManagementManage},
		{"subscription managementPolicy", sub.Spec.ManagementPolicy, billingv1.ManagementManage},
	}
	for _, c := range checks {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s default (-want +got):\n%s", c.name, diff)
		}
	}
}

func TestStatusSubresource(t *testing.T) {
	ctx, ns := newNamespace(t)
	cus := validCustomer(ns, "status")
	if err := env.Client.Create(ctx, cus); err != nil {
		t.Fatal(err)
	}
	gen := cus.Generation

	// A status write changes status only, and does not bump the generation.
	cus.Status.ID = "cus_123"
	cus.Status.ObservedGeneration = gen
	meta.SetStatusCondition(&cus.Status.Conditions, metav1.Condition{
		Type: billingv1.ConditionReady, Status: metav1.ConditionTrue, Reason: billingv1.ReasonSynced,
		Message: "In sync with Stripe", ObservedGeneration: gen,
	})
	cus.Spec.Name = "changed through the status endpoint"
	if err := env.Client.Status().Update(ctx, cus); err != nil {
		t.Fatalf("status update: %v", err)
	}
	got := &billingv1.Customer{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cus), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.ID != "cus_123" || !meta.IsStatusConditionTrue(got.Status.Conditions, billingv1.ConditionReady) {
		t.Errorf("status not stored: %+v", got.Status)
	}
	if got.Spec.Name != "Acme" {
		t.Errorf("status update changed spec.name to %q", got.Spec.Name)
	}
	if got.Generation != gen {
		t.Errorf("status update bumped generation from %d to %d", gen, got.Generation)
	}

	// A spec write leaves status alone and bumps the generation.
	got.Spec.Name = "Acme Inc"
	got.Status.ID = "cus_overwritten"
	if err := env.Client.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got.Status.ID != "cus_123" {
		t.Errorf("spec update changed status.id to %q", got.Status.ID)
	}
	if got.Generation != gen+1 {
		t.Errorf("spec update: generation %d, want %d", got.Generation, gen+1)
	}
}

func TestKubectlGetPrintsColumns(t *testing.T) {
	ctx, ns := newNamespace(t)
	cus := validCustomer(ns, "columns")
	price := validPrice(ns, "columns")
	price.Spec.Recurring = &billingv1.Recurring{Interval: billingv1.IntervalMonth}
	sub := validSubscription(ns, "columns")
	prod := validProduct(ns, "columns")
	for _, o := range []client.Object{cus, price, sub, prod} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	ready := metav1.Condition{Type: billingv1.ConditionReady, Status: metav1.ConditionTrue, Reason: billingv1.ReasonSynced}
	cus.Status.ID = "cus_Column1"
	meta.SetStatusCondition(&cus.Status.Conditions, ready)
	price.Status.ID = "price_Column1"
	meta.SetStatusCondition(&price.Status.Conditions, metav1.Condition{
		Type: billingv1.ConditionReady, Status: metav1.ConditionFalse, Reason: billingv1.ReasonDependencyNotReady,
	})
	periodEnd := metav1.NewTime(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	sub.Status.ID = "sub_Column1"
	sub.Status.StripeState = "past_due"
	sub.Status.CurrentPeriodEnd = &periodEnd
	meta.SetStatusCondition(&sub.Status.Conditions, ready)
	for _, o := range []client.Object{cus, price, sub} {
		if err := env.Client.Status().Update(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	kubectl := func(args ...string) string {
		t.Helper()
		out, err := env.KubectlCommand(ctx, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"get", "customers", "-n", ns}, []string{"STRIPE ID", "EMAIL", "READY", "REASON", "AGE",
			"cus_Column1", "billing@acme.example", "True", "Synced"}},
		{[]string{"get", "sprice", "-n", ns}, []string{"STRIPE ID", "AMOUNT", "CURRENCY", "INTERVAL", "READY", "REASON",
			"price_Column1", "1500", "usd", "month", "False", "DependencyNotReady"}},
		{[]string{"get", "ssub", "-n", ns}, []string{"STRIPE ID", "STRIPE STATUS", "PERIOD END", "READY", "REASON",
			"sub_Column1", "past_due", "True", "Synced"}},
		{[]string{"get", "products", "-n", ns}, []string{"STRIPE ID", "NAME", "ACTIVE", "READY", "Basic plan", "true"}},
		// The category lists every billing kind.
		{[]string{"get", "stripe", "-n", ns}, []string{"customer.billing.stripe-operator.io/columns",
			"product.billing.stripe-operator.io/columns", "price.billing.stripe-operator.io/columns",
			"subscription.billing.stripe-operator.io/columns"}},
	}
	for _, c := range cases {
		out := kubectl(c.args...)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("kubectl %s: output lacks %q:\n%s", strings.Join(c.args, " "), w, out)
			}
		}
	}
}

// isInvalid reports whether err is the API server refusing an object as invalid.
func isInvalid(err error) bool {
	var status apierrors.APIStatus
	return errors.As(err, &status) && apierrors.IsInvalid(err)
}
