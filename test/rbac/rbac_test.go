package rbac

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/controllers"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/operator"
	"github.com/stripe-operator/stripe-operator/internal/stripe"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
	"github.com/stripe-operator/stripe-operator/webhookreceiver"
)

// rbacNamespace is where config/default's RBAC is installed, moved there by a kustomize overlay (its rules
// unchanged), so that nothing here depends on the namespace's name.
const rbacNamespace = "stripe-operator-rbac"

// installedRBAC is config/default's ServiceAccount, Roles, ClusterRoles and bindings, installed in rbacNamespace.
type installedRBAC struct {
	namespace string
	user      string   // the ServiceAccount's user name
	groups    []string // the groups the API server gives a ServiceAccount token
	objs      []*unstructured.Unstructured
}

var (
	rbacOnce sync.Once
	rbacInst *installedRBAC
	rbacErr  error
)

// kustomizeOverlay renders config/default through an overlay that moves it into namespace.
func kustomizeOverlay(ctx context.Context, namespace string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "stripe-operator-overlay-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	base, err := filepath.Rel(dir, filepath.Join(testenv.RepoRoot(), "config", "default"))
	if err != nil {
		return nil, err
	}
	k := fmt.Sprintf("resources:\n- %s\nnamespace: %s\n", base, namespace)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		return nil, err
	}
	out, err := env.KubectlCommand(ctx, "kustomize", dir).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return nil, fmt.Errorf("kubectl kustomize: %w\n%s", err, exit.Stderr)
		}
		return nil, fmt.Errorf("kubectl kustomize: %w", err)
	}
	return out, nil
}

// operatorRBAC installs, once per test binary, the Namespace, ServiceAccount and RBAC objects of config/default
// (moved into rbacNamespace; their rules unchanged) and returns the ServiceAccount's identity.
func operatorRBAC(t *testing.T) *installedRBAC {
	t.Helper()
	rbacOnce.Do(func() {
		rbacErr = errors.New("installing the RBAC of config/default failed in an earlier test")
		ctx := testenv.Context(t)
		raw, err := kustomizeOverlay(ctx, rbacNamespace)
		if err != nil {
			rbacErr = err
			return
		}
		inst := &installedRBAC{namespace: rbacNamespace}
		var account string
		for _, u := range testenv.DecodeAll(t, raw) {
			switch u.GetKind() {
			case "ServiceAccount":
				account = u.GetName()
			case "Namespace", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding":
			default:
				continue
			}
			if err := env.Client.Create(ctx, u); err != nil {
				rbacErr = fmt.Errorf("creating %s %s: %w", u.GetKind(), u.GetName(), err)
				return
			}
			inst.objs = append(inst.objs, u)
		}
		if account == "" {
			rbacErr = errors.New("config/default renders no ServiceAccount")
			return
		}
		inst.user = "system:serviceaccount:" + rbacNamespace + ":" + account
		inst.groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + rbacNamespace,
			"system:authenticated"}
		rbacInst, rbacErr = inst, nil
	})
	if rbacErr != nil {
		t.Fatal(rbacErr)
	}
	return rbacInst
}

// impersonating is the test API server's config as the operator's ServiceAccount: every request is authorized by
// exactly the RBAC config/default installs.
func (r *installedRBAC) impersonating() *rest.Config {
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: r.user, Groups: r.groups}
	return cfg
}

// allowed asks the API server, with a SubjectAccessReview, whether the ServiceAccount may do verb on a Secret.
func (r *installedRBAC) allowed(ctx context.Context, t *testing.T, verb, namespace, name string) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: r.user, Groups: r.groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: namespace, Verb: verb, Resource: "secrets", Name: name},
	}}
	if err := env.Client.Create(ctx, sar); err != nil {
		t.Fatal(err)
	}
	return sar.Status.Allowed
}

// The ServiceAccount may read, watch and update Secrets named stripe-credentials, and no other Secret.
func TestSecretAccessIsByName(t *testing.T) {
	ctx := testenv.Context(t)
	r := operatorRBAC(t)
	name := credentials.DefaultSecretName

	// Statically: every rule of every Role and ClusterRole config/default installs that reaches Secrets names them.
	for _, u := range r.objs {
		if u.GetKind() != "Role" && u.GetKind() != "ClusterRole" {
			continue
		}
		role := &rbacv1.ClusterRole{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, role); err != nil {
			t.Fatal(err)
		}
		for _, rule := range role.Rules {
			core := slices.Contains(rule.APIGroups, "") || slices.Contains(rule.APIGroups, "*")
			secrets := slices.Contains(rule.Resources, "secrets") || slices.Contains(rule.Resources, "*")
			if core && secrets && !slices.Equal(rule.ResourceNames, []string{name}) {
				t.Errorf("%s %s grants %v on Secrets with resourceNames %v, want only %q", u.GetKind(), u.GetName(),
					rule.Verbs, rule.ResourceNames, name)
			}
		}
	}

	team, err := env.Namespace(ctx, "team")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		verb, namespace, name string
		want                  bool
	}{
		{"get", team, name, true},
		{"get", r.namespace, name, true},
		{"update", team, name, true},       // the credentials-in-use finalizer
		{"patch", r.namespace, name, true}, // the webhook signing secret the operator registered
		// A cluster-wide list or watch is authorized by name when it carries fieldSelector=metadata.name=<name>;
		// the API server then authorizes it as below.
		{"list", "", name, true},
		{"watch", "", name, true},
		{"list", team, name, true},

		{"get", team, "other", false},
		{"get", "kube-system", "bootstrap-token-abcdef", false},
		{"update", team, "other", false},
		{"patch", team, "other", false},
		{"list", "", "", false},
		{"watch", "", "", false},
		{"list", team, "", false},
		{"create", team, "", false},
		{"delete", team, name, false},
		{"deletecollection", team, "", false},
	} {
		if got := r.allowed(ctx, t, c.verb, c.namespace, c.name); got != c.want {
			t.Errorf("SubjectAccessReview %s secrets namespace=%q name=%q: allowed=%v, want %v", c.verb, c.namespace,
				c.name, got, c.want)
		}
	}

	// kubectl auth can-i says the same.
	for target, want := range map[string]string{"secret/" + name: "yes", "secret/other": "no"} {
		out, _ := env.KubectlCommand(ctx, "auth", "can-i", "get", target, "-n", team, "--as", r.user,
			"--as-group", strings.Join(r.groups, ",")).Output()
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("kubectl auth can-i get %s as the ServiceAccount: %q, want %q", target, got, want)
		}
	}

	// And real requests as the ServiceAccount.
	for _, s := range []string{name, "other"} {
		if err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: s}}); err != nil {
			t.Fatal(err)
		}
	}
	sa, err := client.New(r.impersonating(), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := sa.Get(ctx, types.NamespacedName{Namespace: team, Name: name}, &corev1.Secret{}); err != nil {
		t.Errorf("get %s as the ServiceAccount: %v", name, err)
	}
	if err := sa.Get(ctx, types.NamespacedName{Namespace: team, Name: "other"}, &corev1.Secret{}); !apierrors.IsForbidden(err) {
		t.Errorf("get other as the ServiceAccount: %v, want Forbidden", err)
	}
	list := &corev1.SecretList{}
	if err := sa.List(ctx, list, client.MatchingFieldsSelector{
		Selector: fields.OneTermEqualSelector("metadata.name", name)}); err != nil {
		t.Errorf("a cluster-wide list by metadata.name as the ServiceAccount: %v", err)
	} else if len(list.Items) == 0 {
		t.Error("a cluster-wide list by metadata.name found no Secret")
	}
	if err := sa.List(ctx, list); !apierrors.IsForbidden(err) {
		t.Errorf("a cluster-wide list of every Secret as the ServiceAccount: %v, want Forbidden", err)
	}
	if err := sa.List(ctx, list, client.InNamespace(team)); !apierrors.IsForbidden(err) {
		t.Errorf("a list of every Secret in a namespace as the ServiceAccount: %v, want Forbidden", err)
	}
}

// rbacLogs collects the manager's and client-go's logs in TestOperatorRunsUnderItsRBAC.
var rbacLogs testenv.SyncBuffer

// The operator runs under exactly config/default's RBAC (its ServiceAccount impersonated, leader election on):
// the samples become Ready in a team namespace with the team's own restricted key and in a namespace that uses the
// operator-wide key; the operator registers its webhook endpoint and stores the signing secret, and the events
// stripesim delivers are folded; the team's Secret carries the in-use finalizer while the samples exist and is
// released once they are deleted; nothing was refused on the way.
func TestOperatorRunsUnderItsRBAC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r := operatorRBAC(t)
	logger := funcr.New(func(prefix, args string) { _, _ = fmt.Fprintln(&rbacLogs, prefix, args) },
		funcr.Options{Verbosity: 1})
	ctrl.SetLogger(logger)
	klog.SetLogger(logger) // client-go's reflectors report a refused list or watch through klog
	defer func() {
		if t.Failed() {
			t.Log(rbacLogs.String())
		}
	}()

	const defaultKey, teamKey = "sk_test_rbac_default", "rk_test_rbac_team"
	sim := stripesim.New(stripesim.Options{RateLimitOff: true})
	defer sim.Close()
	sim.RegisterKey(stripesim.KeyConfig{Key: teamKey, Account: "acct_team", Permissions: []string{
		"rak_customer_write", "rak_product_write", "rak_price_write", "rak_subscription_write", "rak_invoice_read",
		"rak_payment_intent_read", "rak_coupon_write", "rak_promotion_code_write", "rak_tax_rate_write",
		"rak_billing_meter_write", "rak_customer_portal_write", "rak_entitlements.feature_write"}})
	srv := httptest.NewServer(sim)
	defer srv.Close()

	name := credentials.DefaultSecretName
	operatorSecret := types.NamespacedName{Namespace: r.namespace, Name: name}
	team, err := env.Namespace(ctx, "team")
	if err != nil {
		t.Fatal(err)
	}
	shared, err := env.Namespace(ctx, "shared") // no Secret of its own: the operator-wide key
	if err != nil {
		t.Fatal(err)
	}
	teamSecret := types.NamespacedName{Namespace: team, Name: name}
	for ref, key := range map[types.NamespacedName]string{operatorSecret: defaultKey, teamSecret: teamKey} {
		if err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace,
			Name: ref.Name}, Data: map[string][]byte{credentials.APIKeyField: []byte(key)}}); err != nil {
			t.Fatal(err)
		}
	}

	webhookAddr := testenv.FreeAddr(t)
	mctx, stop := context.WithCancel(ctx)
	mgr, err := operator.New(mctx, r.impersonating(), operator.Config{
		MetricsAddr: "0", ProbeAddr: "0", SkipNameValidation: true,
		LeaderElection: true, LeaderElectionNamespace: r.namespace,
		CredentialsSecret: operatorSecret, NamespaceSecretName: name,
		Stripe:      stripe.Config{APIBase: srv.URL},
		Controllers: controllers.Options{ResyncInterval: time.Hour, EventRouteBackoff: 50 * time.Millisecond},
		WebhookAddr: webhookAddr, WebhookPublicURL: "http://" + webhookAddr + webhookreceiver.Path,
	})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("the manager: %v", err)
		}
	}()

	// The operator registers its webhook endpoint and stores the signing secret (a patch of its Secret) before the
	// samples are applied, so that stripesim delivers their events.
	testenv.Eventually(t, time.Minute, func() error {
		s := &corev1.Secret{}
		if err := env.Client.Get(ctx, operatorSecret, s); err != nil {
			return err
		}
		if !strings.HasPrefix(string(s.Data[webhookreceiver.SecretsField]), "whsec_") {
			return errors.New("no signing secret stored in the operator-wide Secret")
		}
		return nil
	})
	samples := testenv.DecodeAll(t, env.Kustomize(ctx, t, "samples"))
	for _, ns := range []string{team, shared} {
		for _, u := range samples {
			u = u.DeepCopy()
			u.SetNamespace(ns)
			if err := env.Client.Create(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	testenv.Eventually(t, 2*time.Minute, func() error { return samplesReady(ctx, samples, team) })
	testenv.Eventually(t, 2*time.Minute, func() error { return samplesReady(ctx, samples, shared) })

	// Each namespace's objects were created with its key: the team's in the team's Stripe account.
	checkCustomerOwners(ctx, t, srv.URL, map[string]string{team: teamKey, shared: defaultKey})

	// The receiver's StripeEvents (created under the operator's RBAC) are folded by the worker, then recorded in
	// the event ledger (also under the operator's RBAC) and deleted.
	testenv.Eventually(t, time.Minute, func() error {
		ledgers := &billingv1.StripeEventLedgerList{}
		if err := env.Client.List(ctx, ledgers, client.InNamespace(r.namespace)); err != nil {
			return err
		}
		for _, l := range ledgers.Items {
			for _, target := range l.Events {
				if strings.Contains(target, "/"+shared+"/") {
					return nil
				}
			}
		}
		return fmt.Errorf("no event processed for namespace %s is in the %d ledgers", shared, len(ledgers.Items))
	})

	// The team's Secret is protected while its objects exist, and released when they are gone.
	checkFinalizerReleased(ctx, t, samples, teamSecret)

	if logs := strings.ToLower(rbacLogs.String()); strings.Contains(logs, "forbidden") {
		t.Error("a request of the operator was refused (forbidden) under its RBAC; see the logs")
	}
}

// samplesReady reports whether every sample in namespace ns is Ready.
func samplesReady(ctx context.Context, samples []*unstructured.Unstructured, ns string) error {
	for _, u := range samples {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(u.GroupVersionKind())
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: u.GetName()}, got); err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		var typed []metav1.Condition
		for _, c := range conds {
			m, _ := c.(map[string]any)
			typed = append(typed, metav1.Condition{Type: fmt.Sprint(m["type"]),
				Status: metav1.ConditionStatus(fmt.Sprint(m["status"])), Reason: fmt.Sprint(m["reason"]),
				Message: fmt.Sprint(m["message"])})
		}
		if !meta.IsStatusConditionTrue(typed, billingv1.ConditionReady) {
			return fmt.Errorf("%s %s/%s is not Ready: %+v", u.GetKind(), ns, u.GetName(), typed)
		}
	}
	return nil
}

// checkCustomerOwners checks that the sample Customer of each namespace exists in Stripe for the namespace's key
// (owners: namespace -> key) and for no other key of the map: each key is its own account.
func checkCustomerOwners(ctx context.Context, t *testing.T, apiBase string, owners map[string]string) {
	t.Helper()
	factory := stripe.NewFactory(stripe.Config{APIBase: apiBase})
	for ns, owner := range owners {
		cus := &billingv1.Customer{}
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "acme"}, cus); err != nil {
			t.Fatal(err)
		}
		for _, key := range owners {
			k, err := stripe.ParseKey(key)
			if err != nil {
				t.Fatal(err)
			}
			_, err = factory.Client(k, "").API.Customers.Get(cus.Status.ID, nil)
			if (key == owner) != (err == nil) {
				t.Errorf("customer %s of namespace %s read with key %s: %v", cus.Status.ID, ns, key, err)
			}
		}
	}
}

// checkFinalizerReleased checks that secret carries the in-use finalizer, deletes the samples of its namespace, and
// waits until they are gone and the finalizer released.
func checkFinalizerReleased(ctx context.Context, t *testing.T, samples []*unstructured.Unstructured,
	secret types.NamespacedName) {
	t.Helper()
	hasFinalizer := func() (bool, error) {
		s := &corev1.Secret{}
		if err := env.Client.Get(ctx, secret, s); err != nil {
			return false, err
		}
		return controllerutil.ContainsFinalizer(s, billingv1.CredentialsInUseFinalizer), nil
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if has, err := hasFinalizer(); err != nil {
			return err
		} else if !has {
			return errors.New("the team's Secret has no in-use finalizer")
		}
		return nil
	})
	for _, u := range samples {
		u = u.DeepCopy()
		u.SetNamespace(secret.Namespace)
		if err := env.Client.Delete(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 2*time.Minute, func() error {
		for _, u := range samples {
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(u.GroupVersionKind())
			err := env.Client.Get(ctx, types.NamespacedName{Namespace: secret.Namespace, Name: u.GetName()}, got)
			if err == nil {
				return fmt.Errorf("%s %s is not deleted yet", u.GetKind(), u.GetName())
			}
			if !apierrors.IsNotFound(err) {
				return err
			}
		}
		if has, err := hasFinalizer(); err != nil {
			return err
		} else if has {
			return errors.New("the team's Secret still has the in-use finalizer")
		}
		return nil
	})
}
