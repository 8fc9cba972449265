// Package helm tests the Helm chart charts/stripe-operator with the Helm SDK against a real kube-apiserver: it
// lints, renders with the defaults and with every option on, applies each rendering with a server-side dry run,
// compares the chart with config/default (RBAC rules, the container's arguments, the security contexts), refuses
// wrong values through values.schema.json, and installs and upgrades a release.
//
// It is a module of its own, so that the Helm SDK is not a dependency of the operator's module.
package helm

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

const (
	systemNamespace = "stripe-operator-system"
	releaseName     = "stripe-operator"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, func(e *testenv.Env) { env = e }) }

func chartDir() string { return filepath.Join(testenv.RepoRoot(), "charts", "stripe-operator") }

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// allOn turns every option of the chart on.
func allOn() map[string]any {
	return map[string]any{
		"image":            map[string]any{"repository": "registry.example.com/stripe-operator", "tag": "v0.1.0"},
		"imagePullSecrets": []any{map[string]any{"name": "registry"}},
		"replicaCount":     3,
		"credentials": map[string]any{"secretName": "billing-credentials", "create": true,
			"apiKey": "sk_test_chart", "account": "acct_chart", "webhookSigningSecrets": "whsec_a,whsec_b"},
		"allowLiveMode":    true,
		"webhookPublicURL": "https://billing.example.com/webhooks/stripe",
		"resyncInterval":   "2h",
		"rateBudget":       map[string]any{"testRate": 10, "liveRate": 50, "searchRate": 5},
		"workers":          8,
		"logLevel":         "debug",
		"extraArgs":        []any{"--event-retention=120h"},
		"nodeSelector":     map[string]any{"kubernetes.io/os": "linux"},
		"tolerations": []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "billing",
			"effect": "NoSchedule"}},
		"affinity": map[string]any{"nodeAffinity": map[string]any{
			"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{"nodeSelectorTerms": []any{
				map[string]any{"matchExpressions": []any{map[string]any{"key": "kubernetes.io/arch",
					"operator": "In", "values": []any{"amd64", "arm64"}}}}}}}},
		"podDisruptionBudget": map[string]any{"enabled": true},
		"networkPolicy":       map[string]any{"enabled": true},
		"serviceMonitor":      map[string]any{"enabled": true, "interval": "15s", "labels": map[string]any{"release": "prom"}},
		"prometheusRule":      map[string]any{"enabled": true, "labels": map[string]any{"release": "prom"}},
		"argocd":              map[string]any{"healthCheck": map[string]any{"enabled": true, "namespace": "argocd"}},
	}
}

// template renders the chart as `helm template --include-crds` does.
func template(t *testing.T, namespace string, vals map[string]any) (string, error) {
	t.Helper()
	inst := action.NewInstall(&action.Configuration{})
	inst.DryRun, inst.ClientOnly, inst.IncludeCRDs, inst.Replace = true, true, true, true
	inst.ReleaseName, inst.Namespace = releaseName, namespace
	inst.KubeVersion = &chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}
	rel, err := inst.Run(loadChart(t), vals)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}

func mustTemplate(t *testing.T, namespace string, vals map[string]any) string {
	t.Helper()
	out, err := template(t, namespace, vals)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	return out
}

func TestChartLints(t *testing.T) {
	for name, vals := range map[string]map[string]any{"defaults": nil, "every option on": allOn()} {
		lint := action.NewLint()
		lint.Strict, lint.Namespace = true, systemNamespace
		res := lint.Run([]string{chartDir()}, vals)
		for _, m := range res.Messages {
			t.Logf("%s: %s", name, m)
		}
		if len(res.Errors) > 0 || res.TotalChartsLinted != 1 {
			t.Errorf("helm lint --strict with %s: %d charts linted, errors %v", name, res.TotalChartsLinted, res.Errors)
		}
	}
}

// values.schema.json refuses a wrong value with a message that names it.
func TestChartRefusesWrongValues(t *testing.T) {
	for _, c := range []struct {
		vals map[string]any
		want string
	}{
		{map[string]any{"replicaCount": 0}, "replicaCount"},
		{map[string]any{"credentials": map[string]any{"create": true, "apiKey": "sk_live_secret"}}, "apiKey"},
		{map[string]any{"logLevel": "loud"}, "logLevel"},
		{map[string]any{"resyncInterval": "ten hours"}, "resyncInterval"},
		{map[string]any{"rateBudget": map[string]any{"testRate": 0}}, "testRate"},
		{map[string]any{"webhookPublicURL": "billing.example.com"}, "webhookPublicURL"},
		{map[string]any{"extraArgs": []any{"allow-live-mode"}}, "extraArgs"},
		{map[string]any{"replicas": 2}, "replicas"}, // a misspelt key
		{map[string]any{"credentials": map[string]any{"create": true}}, "credentials.create needs credentials.apiKey"},
	} {
		_, err := template(t, systemNamespace, c.vals)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("values %v: %v, want an error naming %q", c.vals, err, c.want)
		}
	}
}

// installMonitoringCRDs installs stand-ins for the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs
// (their schemas are not checked here: the test API server only learns the kinds).
func installMonitoringCRDs(ctx context.Context, t *testing.T) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	for kind, plural := range map[string]string{"ServiceMonitor": "servicemonitors", "PrometheusRule": "prometheusrules"} {
		crd := &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: plural + ".monitoring.coreos.com"},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: "monitoring.coreos.com", Scope: apiextensionsv1.NamespaceScoped,
				Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List",
					Plural: plural, Singular: strings.ToLower(kind)},
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object", XPreserveUnknownFields: new(true)}}}},
			},
		}
		if err := c.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	if err := waitForKind(ctx, "monitoring.coreos.com/v1", "PrometheusRule"); err != nil {
		t.Fatal(err)
	}
	if err := waitForKind(ctx, "monitoring.coreos.com/v1", "ServiceMonitor"); err != nil {
		t.Fatal(err)
	}
}

func waitForKind(ctx context.Context, apiVersion, kind string) error {
	for {
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion(apiVersion)
		l.SetKind(kind + "List")
		fresh, err := client.New(env.Config, client.Options{})
		if err != nil {
			return err
		}
		if err = fresh.List(ctx, l); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is not served: %w", kind, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ensureNamespace creates a namespace that enforces the restricted Pod Security Standard, as config/default's does.
func ensureNamespace(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted"}}}
	if err := env.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// Each rendering is accepted by the API server with a server-side dry run, without a warning (the pods meet the
// restricted Pod Security Standard).
func TestChartRenderingsApply(t *testing.T) {
	ctx := testenv.Context(t)
	installMonitoringCRDs(ctx, t)
	for name, c := range map[string]struct {
		namespace string
		vals      map[string]any
	}{
		"defaults":        {systemNamespace, nil},
		"every option on": {"billing", allOn()},
	} {
		ensureNamespace(ctx, t, c.namespace)
		ensureNamespace(ctx, t, "argocd")
		manifest := mustTemplate(t, c.namespace, c.vals)
		cmd := env.KubectlCommand(ctx, "apply", "--server-side", "--dry-run=server", "--field-manager=helm-test",
			"-f", "-")
		cmd.Stdin = strings.NewReader(manifest)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: kubectl apply --server-side --dry-run=server: %v\n%s", name, err, out)
			continue
		}
		objs := testenv.DecodeAll(t, []byte(manifest))
		for _, u := range objs {
			if !strings.Contains(string(out), "/"+u.GetName()+" serverside-applied (server dry run)") {
				t.Errorf("%s: the dry run did not apply %s %s:\n%s", name, u.GetKind(), u.GetName(), out)
			}
		}
		if strings.Contains(string(out), "Warning") {
			t.Errorf("%s: the dry run warned:\n%s", name, out)
		}
		kinds := map[string]int{}
		for _, u := range objs {
			kinds[u.GetKind()]++
		}
		t.Logf("%s: %v", name, kinds)
		if name == "every option on" {
			for _, k := range []string{"NetworkPolicy", "ServiceMonitor", "PrometheusRule", "ConfigMap", "Secret",
				"PodDisruptionBudget", "CustomResourceDefinition"} {
				if kinds[k] == 0 {
					t.Errorf("every option on renders no %s", k)
				}
			}
		}
	}
}

// shape is what the chart and config/default must agree on.
type shape struct {
	Rules         map[string][]rbacv1.PolicyRule // ClusterRoles and Roles by name
	Args          []string
	PodSecurity   *corev1.PodSecurityContext
	Security      *corev1.SecurityContext
	Ports         []corev1.ContainerPort
	NetworkPolicy *networkingv1.NetworkPolicySpec
}

func shapeOf(t *testing.T, objs []*unstructured.Unstructured) shape {
	t.Helper()
	s := shape{Rules: map[string][]rbacv1.PolicyRule{}}
	for _, u := range objs {
		switch u.GetKind() {
		case "ClusterRole", "Role":
			r := &rbacv1.ClusterRole{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, r); err != nil {
				t.Fatal(err)
			}
			s.Rules[u.GetKind()+" "+u.GetName()] = r.Rules
		case "Deployment":
			d := &appsv1.Deployment{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d); err != nil {
				t.Fatal(err)
			}
			c := d.Spec.Template.Spec.Containers[0]
			s.Args, s.PodSecurity, s.Security, s.Ports = c.Args, d.Spec.Template.Spec.SecurityContext,
				c.SecurityContext, c.Ports
		case "NetworkPolicy":
			np := &networkingv1.NetworkPolicy{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, np); err != nil {
				t.Fatal(err)
			}
			np.Spec.PodSelector = metav1.LabelSelector{} // the chart adds the release's instance label
			s.NetworkPolicy = &np.Spec
		}
	}
	return s
}

// configDefault renders config/default with the kubectl built from source.
func configDefault(ctx context.Context, t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	out, err := env.KubectlCommand(ctx, "kustomize", filepath.Join(testenv.RepoRoot(), "config", "default")).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize config/default: %v", err)
	}
	return testenv.DecodeAll(t, out)
}

// The chart with its defaults, released as stripe-operator into stripe-operator-system, grants exactly the RBAC
// rules of config/default (same role names), and runs the container with the same arguments, ports and security
// contexts; with networkPolicy.enabled, the same NetworkPolicy rules. A change to one that is not made to the other
// fails here.
func TestChartAgreesWithConfigDefault(t *testing.T) {
	ctx := testenv.Context(t)
	want := shapeOf(t, configDefault(ctx, t))
	got := shapeOf(t, testenv.DecodeAll(t, []byte(mustTemplate(t, systemNamespace,
		map[string]any{"networkPolicy": map[string]any{"enabled": true}}))))
	if len(want.Rules) < 3 || want.Args == nil || want.NetworkPolicy == nil {
		t.Fatalf("config/default renders too little to compare: %+v", want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config/default and the chart disagree (-config/default +chart):\n%s", diff)
	}

	// The comparison sees a difference when there is one.
	other := shapeOf(t, testenv.DecodeAll(t, []byte(mustTemplate(t, systemNamespace, map[string]any{
		"networkPolicy": map[string]any{"enabled": true}, "extraArgs": []any{"--event-retention=1h"},
		"credentials": map[string]any{"secretName": "other"}}))))
	if cmp.Equal(want.Args, other.Args) || cmp.Equal(want.Rules, other.Rules) {
		t.Error("the comparison missed a changed argument or a changed Secret name")
	}
}

// helmConfig is an action configuration against the test API server, storing releases as Secrets in namespace.
func helmConfig(t *testing.T, namespace string) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &env.Kubeconfig, &namespace
	cfg := &action.Configuration{}
	if err := cfg.Init(flags, namespace, "secret", t.Logf); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A release installs and upgrades through the Helm SDK against the API server.
func TestChartInstallsAndUpgrades(t *testing.T) {
	ctx := testenv.Context(t)
	const namespace = "helm-release"
	ensureNamespace(ctx, t, namespace)
	cfg := helmConfig(t, namespace)

	inst := action.NewInstall(cfg)
	inst.ReleaseName, inst.Namespace, inst.Timeout = releaseName, namespace, time.Minute
	rel, err := inst.Run(loadChart(t), map[string]any{
		"credentials": map[string]any{"create": true, "apiKey": "sk_test_release"}})
	if err != nil {
		t.Fatalf("helm install: %v", err)
	}
	if rel.Info.Status != "deployed" || rel.Version != 1 {
		t.Errorf("after the install: release %s version %d", rel.Info.Status, rel.Version)
	}
	deployment := types.NamespacedName{Namespace: namespace, Name: releaseName + "-controller-manager"}
	d := &appsv1.Deployment{}
	if err := env.Client.Get(ctx, deployment, d); err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 2 || !cmp.Equal(d.Spec.Template.Spec.Containers[0].Args[4:],
		[]string{"--credentials-secret=" + namespace + "/stripe-credentials"}) {
		t.Errorf("installed Deployment: %d replicas, args %v", *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Args)
	}
	secret := &corev1.Secret{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: "stripe-credentials"}, secret); err != nil ||
		string(secret.Data["apiKey"]) != "sk_test_release" {
		t.Errorf("the credentials Secret: %v %v", err, secret.Data)
	}

	up := action.NewUpgrade(cfg)
	up.Namespace, up.Timeout = namespace, time.Minute
	rel, err = up.Run(releaseName, loadChart(t), map[string]any{
		"credentials":   map[string]any{"create": true, "apiKey": "sk_test_release"},
		"replicaCount":  3,
		"logLevel":      "debug",
		"networkPolicy": map[string]any{"enabled": true},
	})
	if err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
	if rel.Info.Status != "deployed" || rel.Version != 2 {
		t.Errorf("after the upgrade: release %s version %d", rel.Info.Status, rel.Version)
	}
	if err := env.Client.Get(ctx, deployment, d); err != nil {
		t.Fatal(err)
	}
	args := d.Spec.Template.Spec.Containers[0].Args
	if *d.Spec.Replicas != 3 || args[len(args)-1] != "--zap-log-level=debug" {
		t.Errorf("upgraded Deployment: %d replicas, args %v", *d.Spec.Replicas, args)
	}
	np := &networkingv1.NetworkPolicy{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: releaseName + "-controller-manager"}, np); err != nil {
		t.Errorf("the upgrade added no NetworkPolicy: %v", err)
	}

	if _, err := action.NewUninstall(cfg).Run(releaseName); err != nil {
		t.Fatalf("helm uninstall: %v", err)
	}
	if err := env.Client.Get(ctx, deployment, d); !apierrors.IsNotFound(err) {
		t.Errorf("after the uninstall the Deployment is still there: %v", err)
	}
}
