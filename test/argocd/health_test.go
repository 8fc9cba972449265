package argocd

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

// object is a billing object as Argo CD receives it: numbers are int64, as in an unstructured object.
func object(kind string, generation int64, st map[string]any) map[string]any {
	obj := map[string]any{
		"apiVersion": billingv1.GroupVersion.String(),
		"kind":       kind,
		"metadata": map[string]any{
			"name": "acme", "namespace": "team-a", "generation": generation,
			"uid": "7f4c2b9e-0000-4000-8000-000000000001",
		},
		"spec": map[string]any{},
	}
	if st != nil {
		obj["status"] = st
	}
	return obj
}

func deleting(obj map[string]any) map[string]any {
	md := obj["metadata"].(map[string]any)
	md["deletionTimestamp"] = "2030-01-02T03:04:05Z"
	md["finalizers"] = []any{billingv1.Finalizer}
	return obj
}

func cond(typ, st, reason, message string) map[string]any {
	return map[string]any{
		"type": typ, "status": st, "reason": reason, "message": message,
		"lastTransitionTime": "2030-01-01T00:00:00Z",
	}
}

// stat is a status with an observedGeneration (0: absent, as the operator's omitempty leaves it) and conditions.
func stat(observed int64, conds ...map[string]any) map[string]any {
	st := map[string]any{"id": "cus_Acme1"}
	if observed > 0 {
		st["observedGeneration"] = observed
	}
	list := make([]any, 0, len(conds))
	for _, c := range conds {
		list = append(list, c)
	}
	st["conditions"] = list
	return st
}

const (
	customer     = "Customer"
	product      = "Product"
	price        = "Price"
	subscription = "Subscription"
)

var (
	readySynced = cond(billingv1.ConditionReady, "True", billingv1.ReasonSynced, "In sync with Stripe")
	authFailed  = "Stripe refused the API key (401); fix the credentials Secret: Invalid API Key provided [req_9]"
	declined    = "The payment of invoice in_1 (2000 usd) failed: Your card has insufficient funds. [evt_1]"
)

// healthCases are the statuses the operator writes (controllers/status.go, the StripeEvent worker) and the verdicts
// Argo CD must show. kstatus is what kstatus (Flux, kubectl wait) says of the same object; where it differs from the
// Argo CD verdict, the comment says why.
var healthCases = []struct {
	name    string
	obj     map[string]any
	want    Health
	kstatus status.Status
}{
	{
		name:    "ready",
		obj:     object(customer, 1, stat(1, readySynced)),
		want:    Health{"Healthy", "In sync with Stripe"},
		kstatus: status.CurrentStatus,
	},
	{
		name: "ready without a message",
		obj: object(product, 1, stat(1,
			cond(billingv1.ConditionReady, "True", billingv1.ReasonSynced, ""))),
		want:    Health{"Healthy", "Ready"},
		kstatus: status.CurrentStatus,
	},
	{
		name: "creating",
		obj: object(customer, 1, stat(0,
			cond(billingv1.ConditionReady, "False", billingv1.ReasonCreating, "Creating the customer in Stripe"),
			cond(billingv1.ConditionReconciling, "True", billingv1.ReasonCreating, "Creating the customer in Stripe"))),
		want:    Health{"Progressing", "Creating: Creating the customer in Stripe"},
		kstatus: status.InProgressStatus,
	},
	{
		name: "rate limited on the current generation",
		obj: object(price, 2, stat(2,
			cond(billingv1.ConditionReady, "False", billingv1.ReasonRateLimited, "Stripe is rate limiting"),
			cond(billingv1.ConditionReconciling, "True", billingv1.ReasonRateLimited, "Stripe is rate limiting"))),
		want:    Health{"Progressing", "RateLimited: Stripe is rate limiting"},
		kstatus: status.InProgressStatus,
	},
	{
		name: "waiting for a dependency",
		obj: object(subscription, 1, stat(0,
			cond(billingv1.ConditionReady, "False", billingv1.ReasonDependencyNotReady, "Customer acme has no Stripe ID yet"),
			cond(billingv1.ConditionReconciling, "True", billingv1.ReasonDependencyNotReady,
				"Customer acme has no Stripe ID yet"))),
		want:    Health{"Progressing", "DependencyNotReady: Customer acme has no Stripe ID yet"},
		kstatus: status.InProgressStatus,
	},
	{
		name: "stalled",
		obj: object(price, 3, stat(3,
			cond(billingv1.ConditionReady, "False", billingv1.ReasonInvalidRequest, "No such product: 'prod_x' (param product)"),
			cond(billingv1.ConditionStalled, "True", billingv1.ReasonInvalidRequest,
				"No such product: 'prod_x' (param product)"))),
		want:    Health{"Degraded", "InvalidRequest: No such product: 'prod_x' (param product)"},
		kstatus: status.FailedStatus,
	},
	{
		name: "stalled by a card error on create",
		obj: object(subscription, 1, stat(1,
			cond(billingv1.ConditionReady, "False", billingv1.ReasonPaymentFailed, "Your card was declined."),
			cond(billingv1.ConditionStalled, "True", billingv1.ReasonPaymentFailed, "Your card was declined."))),
		want:    Health{"Degraded", "PaymentFailed: Your card was declined."},
		kstatus: status.FailedStatus,
	},
	{
		name: "stalled for an older generation",
		obj: object(product, 4, stat(3,
			cond(billingv1.ConditionReady, "False", billingv1.ReasonInvalidRequest, "Invalid statement descriptor"),
			cond(billingv1.ConditionStalled, "True", billingv1.ReasonInvalidRequest, "Invalid statement descriptor"))),
		want:    Health{"Progressing", "Waiting for the operator to reconcile generation 4 (observed 3)"},
		kstatus: status.InProgressStatus,
	},
	{
		// kstatus does not know PaymentFailed: the object is in sync, the money is not.
		name: "payment failed",
		obj: object(subscription, 1, stat(1, readySynced,
			cond(billingv1.ConditionPaymentFailed, "True", billingv1.ReasonPaymentFailed, declined))),
		want:    Health{"Degraded", "PaymentFailed: " + declined},
		kstatus: status.CurrentStatus,
	},
	{
		name: "payment failed while a new spec is reconciled",
		obj: object(subscription, 2, stat(1,
			cond(billingv1.ConditionReady, "False", billingv1.ReasonUpdating, "Updating the subscription in Stripe"),
			cond(billingv1.ConditionReconciling, "True", billingv1.ReasonUpdating, "Updating the subscription in Stripe"),
			cond(billingv1.ConditionPaymentFailed, "True", billingv1.ReasonPaymentFailed, declined))),
		want:    Health{"Degraded", "PaymentFailed: " + declined},
		kstatus: status.InProgressStatus,
	},
	{
		name: "paid again",
		obj: object(subscription, 1, stat(1, readySynced,
			cond(billingv1.ConditionPaymentFailed, "False", billingv1.ReasonPaymentSucceeded, "Invoice in_2 was paid"))),
		want:    Health{"Healthy", "In sync with Stripe"},
		kstatus: status.CurrentStatus,
	},
	{
		name: "stalled and payment failed",
		obj: object(subscription, 1, stat(1,
			cond(billingv1.ConditionReady, "False", billingv1.ReasonAuthenticationFailed, authFailed),
			cond(billingv1.ConditionStalled, "True", billingv1.ReasonAuthenticationFailed, authFailed),
			cond(billingv1.ConditionPaymentFailed, "True", billingv1.ReasonPaymentFailed, declined))),
		want:    Health{"Degraded", "AuthenticationFailed: " + authFailed},
		kstatus: status.FailedStatus,
	},
	{
		// kstatus calls an object without conditions or observedGeneration Current; Argo CD waits for the operator.
		name:    "no status",
		obj:     object(customer, 1, nil),
		want:    Health{"Progressing", "Waiting for the operator to report status"},
		kstatus: status.CurrentStatus,
	},
	{
		name:    "status without conditions",
		obj:     object(customer, 1, map[string]any{"id": "cus_Acme1"}),
		want:    Health{"Progressing", "Waiting for the operator to report status"},
		kstatus: status.CurrentStatus,
	},
	{
		name:    "empty conditions",
		obj:     object(price, 2, stat(2)),
		want:    Health{"Progressing", "Waiting for the operator to report status"},
		kstatus: status.CurrentStatus,
	},
	{
		name:    "stale observedGeneration",
		obj:     object(customer, 2, stat(1, readySynced)),
		want:    Health{"Progressing", "Waiting for the operator to reconcile generation 2 (observed 1)"},
		kstatus: status.InProgressStatus,
	},
	{
		name: "not ready, nothing in flight",
		obj: object(product, 1, stat(1,
			cond(billingv1.ConditionReady, "False", billingv1.ReasonUpdating, "Updating the product in Stripe"))),
		want:    Health{"Progressing", "Updating: Updating the product in Stripe"},
		kstatus: status.InProgressStatus,
	},
	{
		// Without Ready, Reconciling or Stalled kstatus assumes Current.
		name: "no Ready condition",
		obj: object(subscription, 1, stat(1,
			cond(billingv1.ConditionPaymentFailed, "False", billingv1.ReasonPaymentSucceeded, "Invoice in_2 was paid"))),
		want:    Health{"Progressing", "Waiting for the Ready condition"},
		kstatus: status.CurrentStatus,
	},
	{
		// Deletion bumps metadata.generation; the conditions from before it are not current.
		name:    "deleting",
		obj:     deleting(object(customer, 2, stat(1, readySynced))),
		want:    Health{"Progressing", "Pending deletion"},
		kstatus: status.TerminatingStatus,
	},
	{
		name: "deleting in Stripe",
		obj: deleting(object(subscription, 2, stat(1,
			cond(billingv1.ConditionReady, "False", billingv1.ReasonDeleting, "Carrying out the deletion policy in Stripe"),
			cond(billingv1.ConditionReconciling, "True", billingv1.ReasonDeleting,
				"Carrying out the deletion policy in Stripe")))),
		want:    Health{"Progressing", "Pending deletion: Carrying out the deletion policy in Stripe"},
		kstatus: status.TerminatingStatus,
	},
	{
		name: "deletion stalled",
		obj: deleting(object(product, 2, stat(2,
			cond(billingv1.ConditionReady, "False", billingv1.ReasonAuthenticationFailed, authFailed),
			cond(billingv1.ConditionStalled, "True", billingv1.ReasonAuthenticationFailed, authFailed)))),
		want:    Health{"Degraded", "Deletion stalled: AuthenticationFailed: " + authFailed},
		kstatus: status.TerminatingStatus,
	},
	{
		name: "deleting an object that was stalled before",
		obj: deleting(object(price, 2, stat(1,
			cond(billingv1.ConditionReady, "False", billingv1.ReasonInvalidRequest, "Invalid currency"),
			cond(billingv1.ConditionStalled, "True", billingv1.ReasonInvalidRequest, "Invalid currency")))),
		want:    Health{"Progressing", "Pending deletion"},
		kstatus: status.TerminatingStatus,
	},
}

func loadScript(t *testing.T) string {
	t.Helper()
	script, err := LoadScript()
	if err != nil {
		t.Fatal(err)
	}
	return script
}

func TestHealth(t *testing.T) {
	script := loadScript(t)
	for _, c := range healthCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Evaluate(script, c.obj)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("health (-want +got):\n%s", diff)
			}
			// The same object through kstatus, so that the table states where Argo CD and Flux agree.
			res, err := status.Compute(&unstructured.Unstructured{Object: c.obj})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != c.kstatus {
				t.Errorf("kstatus: %s (%s), want %s", res.Status, res.Message, c.kstatus)
			}
		})
	}
}

// The script does not look at the kind: every billing kind gets the same verdicts.
func TestHealthIsTheSameForEveryKind(t *testing.T) {
	script := loadScript(t)
	for _, kind := range []string{customer, product, price, subscription, "TaxRate", "Meter", "BillingPortalConfiguration",
		"EntitlementFeature"} {
		for _, c := range healthCases {
			obj := object(kind, 0, nil)
			for k, v := range c.obj {
				if k != "kind" {
					obj[k] = v
				}
			}
			got, err := Evaluate(script, obj)
			if err != nil {
				t.Fatalf("%s, %s: %v", kind, c.name, err)
			}
			if got != c.want {
				t.Errorf("%s, %s: %+v, want %+v", kind, c.name, got, c.want)
			}
		}
	}
}

// Every name the script reads must matter: misspelling one in the script changes some verdict in the table. This
// keeps the table honest (it exercises each condition and field) and ties the script to api/v1's names.
func TestEveryNameTheScriptReadsMatters(t *testing.T) {
	script := loadScript(t)
	quoted := func(s string) string { return `"` + s + `"` }
	for _, m := range []struct{ name, misspelled string }{
		{quoted(billingv1.ConditionReady), quoted("Readdy")},
		{quoted(billingv1.ConditionReconciling), quoted("Reconcilling")},
		{quoted(billingv1.ConditionStalled), quoted("Staled")},
		{quoted(billingv1.ConditionPaymentFailed), quoted("PaymentFailure")},
		{quoted("True"), quoted("true")},
		{".observedGeneration", ".observedgeneration"},
		{".generation", ".generations"},
		{".deletionTimestamp", ".deletionTimeStamp"},
		{".conditions", ".condition"},
		{".reason", ".reasons"},
		{".message", ".messages"},
	} {
		misspelled := strings.ReplaceAll(script, m.name, m.misspelled)
		if misspelled == script {
			t.Errorf("the script does not contain %s", m.name)
			continue
		}
		changed := 0
		for _, c := range healthCases {
			got, err := Evaluate(misspelled, c.obj)
			if err != nil || got != c.want {
				changed++
			}
		}
		if changed == 0 {
			t.Errorf("misspelling %s in the script changes no verdict: the cases do not exercise it", m.name)
		}
	}
}

// Argo CD does not open Lua's string library for health scripts; Evaluate must not either, or a script that works
// here would fail in Argo CD.
func TestEvaluateOpensOnlyWhatArgoCDOpens(t *testing.T) {
	obj := object(customer, 1, nil)
	if _, err := Evaluate(`return {status = string.upper("healthy")}`, obj); err == nil {
		t.Error("a script using the string library ran")
	}
	if _, err := Evaluate(`return {status = "Fine"}`, obj); err == nil {
		t.Error("a status Argo CD does not know was accepted")
	}
	if _, err := Evaluate(`return "Healthy"`, obj); err == nil {
		t.Error("a script returning a string was accepted")
	}
	got, err := Evaluate(`local n = 0 for _ in ipairs(obj.status.conditions) do n = n + 1 end
		return {status = "Healthy", message = obj.metadata.name .. " " .. n .. " " .. obj.metadata.generation}`,
		object(customer, 7, stat(7, readySynced)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Message != "acme 1 7" {
		t.Errorf("obj as Lua saw name, conditions and generation as %q, want %q", got.Message, "acme 1 7")
	}
}
