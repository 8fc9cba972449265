package crd

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
	"github.com/stripe-operator/stripe-operator/test/argocd"
)

const systemNamespace = "stripe-operator-system"

// rendered is config/default, by kind.
type rendered struct {
	raw        []byte
	objs       []*unstructured.Unstructured
	namespace  *corev1.Namespace
	deployment *appsv1.Deployment
	services   map[string]*corev1.Service
	policy     *networkingv1.NetworkPolicy
	pdb        *policyv1.PodDisruptionBudget
	account    *corev1.ServiceAccount
	crds       []string
}

func renderDefault(ctx context.Context, t *testing.T) *rendered {
	t.Helper()
	r := &rendered{raw: env.Kustomize(ctx, t, "default"), services: map[string]*corev1.Service{}}
	r.objs = testenv.DecodeAll(t, r.raw)
	typed := func(u *unstructured.Unstructured, into any) {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	one := func(kind string, have bool) {
		if have {
			t.Fatalf("config/default renders more than one %s", kind)
		}
	}
	for _, u := range r.objs {
		switch u.GetKind() {
		case "Namespace":
			one("Namespace", r.namespace != nil)
			r.namespace = &corev1.Namespace{}
			typed(u, r.namespace)
		case "Deployment":
			one("Deployment", r.deployment != nil)
			r.deployment = &appsv1.Deployment{}
			typed(u, r.deployment)
		case "Service":
			svc := &corev1.Service{}
			typed(u, svc)
			r.services[svc.Name] = svc
		case "NetworkPolicy":
			one("NetworkPolicy", r.policy != nil)
			r.policy = &networkingv1.NetworkPolicy{}
			typed(u, r.policy)
		case "PodDisruptionBudget":
			one("PodDisruptionBudget", r.pdb != nil)
			r.pdb = &policyv1.PodDisruptionBudget{}
			typed(u, r.pdb)
		case "ServiceAccount":
			one("ServiceAccount", r.account != nil)
			r.account = &corev1.ServiceAccount{}
			typed(u, r.account)
		case "CustomResourceDefinition":
			r.crds = append(r.crds, u.GetName())
		}
	}
	for kind, missing := range map[string]bool{"Namespace": r.namespace == nil, "Deployment": r.deployment == nil,
		"NetworkPolicy": r.policy == nil, "PodDisruptionBudget": r.pdb == nil, "ServiceAccount": r.account == nil} {
		if missing {
			t.Fatalf("config/default renders no %s", kind)
		}
	}
	return r
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// manager is the operator's container in the Deployment.
func (r *rendered) manager(t *testing.T) *corev1.Container {
	t.Helper()
	cs := r.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("the Deployment has %d containers, want 1", len(cs))
	}
	return &cs[0]
}

// flagPort is the port of a --name=host:port argument.
func flagPort(t *testing.T, c *corev1.Container, name string) int32 {
	t.Helper()
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			_, p, err := net.SplitHostPort(v)
			if err != nil {
				t.Fatalf("--%s=%s: %v", name, v, err)
			}
			n, err := strconv.ParseInt(p, 10, 32)
			if err != nil {
				t.Fatalf("--%s=%s: %v", name, v, err)
			}
			return int32(n)
		}
	}
	t.Fatalf("the manager has no --%s argument (its default would not be checked here)", name)
	return 0
}

// containerPort resolves a Service targetPort or a NetworkPolicy port (a number or a port name) on the container.
func containerPort(c *corev1.Container, p intstr.IntOrString, protocol corev1.Protocol) (corev1.ContainerPort, bool) {
	if protocol == "" {
		protocol = corev1.ProtocolTCP
	}
	for _, cp := range c.Ports {
		proto := cp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		if proto != protocol {
			continue
		}
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

func namedPort(t *testing.T, c *corev1.Container, name string) corev1.ContainerPort {
	t.Helper()
	p, ok := containerPort(c, intstr.FromString(name), corev1.ProtocolTCP)
	if !ok {
		t.Fatalf("the manager has no TCP container port named %q", name)
	}
	return p
}

func TestDefaultDeploymentObjects(t *testing.T) {
	ctx := testenv.Context(t)
	r := renderDefault(ctx, t)
	if r.namespace.Name != systemNamespace {
		t.Errorf("namespace %q, want %q", r.namespace.Name, systemNamespace)
	}
	if got := r.namespace.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("the namespace enforces the %q Pod Security Standard, want restricted", got)
	}
	for _, u := range r.objs {
		if u.GetKind() == "Namespace" || u.GetKind() == "CustomResourceDefinition" ||
			strings.HasPrefix(u.GetKind(), "Cluster") {
			continue
		}
		if u.GetNamespace() != systemNamespace {
			t.Errorf("%s %s is in namespace %q, want %q", u.GetKind(), u.GetName(), u.GetNamespace(), systemNamespace)
		}
	}
	sort.Strings(r.crds)
	want := []string{"billingportalconfigurations", "coupons", "customers", "entitlementfeatures", "meters", "prices",
		"products", "promotioncodes", "stripeeventledgers", "stripeevents", "subscriptions", "taxrates"}
	for i := range want {
		want[i] += "." + billingv1.GroupVersion.Group
	}
	if diff := cmp.Diff(want, r.crds); diff != "" {
		t.Errorf("CRDs (-want +got):\n%s", diff)
	}
}

func TestDefaultDeploymentManager(t *testing.T) {
	ctx := testenv.Context(t)
	r := renderDefault(ctx, t)
	d := r.deployment
	c := r.manager(t)

	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %s, want 2", ptrString(d.Spec.Replicas))
	}
	if !slices.Contains(c.Args, "--leader-elect") && !slices.Contains(c.Args, "--leader-elect=true") {
		t.Errorf("the manager runs without --leader-elect: %v", c.Args)
	}
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--webhook-receiver-only") {
			t.Errorf("the manager runs %s: the controllers would not run", a)
		}
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the Deployment's selector %v does not select its pod labels %v (%v)", d.Spec.Selector,
			d.Spec.Template.Labels, err)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("a rollout may take a replica down before its successor is ready: %+v", d.Spec.Strategy)
	}
	if name := d.Spec.Template.Spec.ServiceAccountName; name != r.account.Name {
		t.Errorf("serviceAccountName %q, but the rendered ServiceAccount is %q", name, r.account.Name)
	}
	checkManagerPorts(t, c)
	checkSecurity(t, &d.Spec.Template.Spec, c)
	checkResources(t, c)
}

// checkManagerPorts: the flags, the container ports and the probes agree.
func checkManagerPorts(t *testing.T, c *corev1.Container) {
	t.Helper()
	for flag, name := range map[string]string{"webhook-bind-address": "webhook", "metrics-bind-address": "metrics",
		"health-probe-bind-address": "probes"} {
		if got, want := namedPort(t, c, name).ContainerPort, flagPort(t, c, flag); got != want {
			t.Errorf("container port %q is %d, but --%s listens on %d", name, got, flag, want)
		}
	}
	for what, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", what)
			continue
		}
		p, ok := containerPort(c, probe.HTTPGet.Port, corev1.ProtocolTCP)
		if !ok || p.Name != "probes" {
			t.Errorf("the %s probe's port %s is not the probes port", what, probe.HTTPGet.Port.String())
		}
	}
}

// checkSecurity: non-root, read-only root filesystem, no privilege escalation, no capabilities.
func checkSecurity(t *testing.T, pod *corev1.PodSpec, c *corev1.Container) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("the pod does not set runAsNonRoot: true")
	}
	if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		t.Error("the pod runs as user 0")
	}
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("the manager has no securityContext")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("the manager's root filesystem is writable")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("the manager allows privilege escalation")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		t.Errorf("the manager does not drop all capabilities: %+v", sc.Capabilities)
	}
}

// checkResources: CPU and memory requests and limits, requests within limits.
func checkResources(t *testing.T, c *corev1.Container) {
	t.Helper()
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := c.Resources.Requests[res], c.Resources.Limits[res]
		if req.IsZero() || lim.IsZero() {
			t.Errorf("%s: request %s, limit %s; want both", res, req.String(), lim.String())
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("%s: request %s above limit %s", res, req.String(), lim.String())
		}
	}
	if m := c.Resources.Limits[corev1.ResourceMemory]; m.Cmp(resource.MustParse("128Mi")) < 0 {
		t.Errorf("memory limit %s is too small for the informer caches", m.String())
	}
}

func TestDefaultDeploymentServices(t *testing.T) {
	ctx := testenv.Context(t)
	r := renderDefault(ctx, t)
	c := r.manager(t)
	podLabels := labels.Set(r.deployment.Spec.Template.Labels)

	wantTarget := map[string]int32{ // Service -> the container port it must reach
		"stripe-operator-webhook-receiver": flagPort(t, c, "webhook-bind-address"),
		"stripe-operator-metrics":          flagPort(t, c, "metrics-bind-address"),
	}
	if len(r.services) != len(wantTarget) {
		t.Errorf("config/default renders %d Services, want %d", len(r.services), len(wantTarget))
	}
	for name, target := range wantTarget {
		svc := r.services[name]
		if svc == nil {
			t.Errorf("no Service %s", name)
			continue
		}
		// Every replica serves webhooks and metrics: the selector must not pick the leader or one pod.
		if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
			t.Errorf("Service %s selects %v, which does not match the pod labels %v", name, svc.Spec.Selector, podLabels)
		}
		if svc.Spec.Type != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("Service %s is of type %s, want ClusterIP", name, svc.Spec.Type)
		}
		if len(svc.Spec.Ports) != 1 {
			t.Errorf("Service %s has %d ports, want 1", name, len(svc.Spec.Ports))
			continue
		}
		sp := svc.Spec.Ports[0]
		cp, ok := containerPort(c, sp.TargetPort, sp.Protocol)
		if !ok {
			t.Errorf("Service %s: targetPort %s/%s is no container port", name, sp.Protocol, sp.TargetPort.String())
			continue
		}
		if cp.ContainerPort != target {
			t.Errorf("Service %s reaches container port %d, want %d", name, cp.ContainerPort, target)
		}
	}
}

// policyRule is one ingress or egress rule of a NetworkPolicy.
type policyRule struct {
	ports []networkingv1.NetworkPolicyPort
	peers []networkingv1.NetworkPolicyPeer
}

// portPeers summarises the rules of one direction of a NetworkPolicy as "protocol/port" -> peers allowed.
func portPeers(t *testing.T, c *corev1.Container, rules []policyRule) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, rule := range rules {
		var who []string
		if len(rule.peers) == 0 {
			who = []string{"anywhere"}
		}
		for _, p := range rule.peers {
			switch {
			case p.IPBlock != nil:
				who = append(who, "ipBlock "+p.IPBlock.CIDR)
			case p.NamespaceSelector != nil && p.PodSelector == nil:
				who = append(who, "namespaces "+metav1.FormatLabelSelector(p.NamespaceSelector))
			default:
				who = append(who, fmt.Sprintf("pods %v in namespaces %v", p.PodSelector, p.NamespaceSelector))
			}
		}
		if len(rule.ports) == 0 {
			out["all ports"] = append(out["all ports"], who...)
		}
		for _, p := range rule.ports {
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			key := string(proto) + "/all"
			if p.Port != nil {
				port := p.Port.String()
				if p.Port.Type == intstr.String { // a named port of the pod
					cp, ok := containerPort(c, *p.Port, proto)
					if !ok {
						t.Errorf("NetworkPolicy port %q names no container port", p.Port.StrVal)
					}
					port = strconv.Itoa(int(cp.ContainerPort))
				}
				key = string(proto) + "/" + port
			}
			if p.EndPort != nil {
				key += "-" + strconv.Itoa(int(*p.EndPort))
			}
			out[key] = append(out[key], who...)
		}
	}
	return out
}

func TestDefaultDeploymentNetworkPolicy(t *testing.T) {
	ctx := testenv.Context(t)
	r := renderDefault(ctx, t)
	c := r.manager(t)
	np := r.policy.Spec

	sel, err := metav1.LabelSelectorAsSelector(&np.PodSelector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(r.deployment.Spec.Template.Labels)) {
		t.Errorf("the NetworkPolicy's podSelector %v does not select the operator's pods (%v)", np.PodSelector, err)
	}
	if diff := cmp.Diff([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		np.PolicyTypes); diff != "" {
		t.Errorf("policyTypes (-want +got):\n%s", diff)
	}

	ingress := make([]policyRule, 0, len(np.Ingress))
	for _, rule := range np.Ingress {
		ingress = append(ingress, policyRule{ports: rule.Ports, peers: rule.From})
	}
	webhook := fmt.Sprintf("TCP/%d", flagPort(t, c, "webhook-bind-address"))
	metrics := fmt.Sprintf("TCP/%d", flagPort(t, c, "metrics-bind-address"))
	// Stripe reaches the receiver from anywhere; metrics only from namespaces labelled for monitoring; nothing else
	// (the kubelet's probes come from the node, which NetworkPolicy always allows).
	wantIngress := map[string][]string{webhook: {"anywhere"}, metrics: {"namespaces metrics=enabled"}}
	if diff := cmp.Diff(wantIngress, portPeers(t, c, ingress)); diff != "" {
		t.Errorf("ingress (-want +got):\n%s", diff)
	}

	egress := make([]policyRule, 0, len(np.Egress))
	for _, rule := range np.Egress {
		egress = append(egress, policyRule{ports: rule.Ports, peers: rule.To})
	}
	// DNS, HTTPS to Stripe (and managed API servers), the API server's own port.
	wantEgress := map[string][]string{"UDP/53": {"anywhere"}, "TCP/53": {"anywhere"}, "TCP/443": {"anywhere"},
		"TCP/6443": {"anywhere"}}
	if diff := cmp.Diff(wantEgress, portPeers(t, c, egress)); diff != "" {
		t.Errorf("egress (-want +got):\n%s", diff)
	}
}

func TestDefaultDeploymentDisruptionBudget(t *testing.T) {
	ctx := testenv.Context(t)
	r := renderDefault(ctx, t)
	pdb := r.pdb.Spec
	sel, err := metav1.LabelSelectorAsSelector(pdb.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(r.deployment.Spec.Template.Labels)) {
		t.Errorf("the PDB's selector %v does not select the operator's pods (%v)", pdb.Selector, err)
	}
	replicas := int(*r.deployment.Spec.Replicas)
	// With every replica up, exactly one may be evicted at a time.
	var allowed int
	switch {
	case pdb.MaxUnavailable != nil && pdb.MinAvailable == nil:
		allowed, err = intstr.GetScaledValueFromIntOrPercent(pdb.MaxUnavailable, replicas, true)
	case pdb.MinAvailable != nil && pdb.MaxUnavailable == nil:
		var minAvailable int
		minAvailable, err = intstr.GetScaledValueFromIntOrPercent(pdb.MinAvailable, replicas, true)
		allowed = replicas - minAvailable
	default:
		t.Fatalf("the PDB must set exactly one of minAvailable and maxUnavailable: %+v", pdb)
	}
	if err != nil || allowed != 1 {
		t.Errorf("the PDB allows %d of %d replicas to be evicted at once, want 1 (%v)", allowed, replicas, err)
	}
}

// serverSideApply runs kubectl apply --server-side (with --dry-run=server when dryRun) on manifests and returns
// its output.
func serverSideApply(ctx context.Context, t *testing.T, dryRun bool, manifests []byte) string {
	t.Helper()
	args := []string{"apply", "--server-side", "--field-manager=stripe-operator-test", "-f", "-"}
	if dryRun {
		args = append(args, "--dry-run=server")
	}
	cmd := env.KubectlCommand(ctx, args...)
	cmd.Stdin = bytes.NewReader(manifests)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// applySystemNamespace applies the rendered Namespace for real. A server-side dry run does not create the
// namespace, and the namespaced objects are refused with `namespaces "stripe-operator-system" not found` without
// it; its Pod Security labels are what the dry run of the Deployment is checked against. It is never deleted: the
// test API server runs no namespace controller, so a deleted namespace would stay Terminating and refuse the
// next test's dry run.
func applySystemNamespace(ctx context.Context, t *testing.T, r *rendered) {
	t.Helper()
	for _, u := range r.objs {
		if u.GetKind() == "Namespace" {
			b, err := u.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			serverSideApply(ctx, t, false, b)
		}
	}
}

// checkDryRun checks that a server-side dry run applied every object and warned about nothing.
func checkDryRun(t *testing.T, out string, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		if !strings.Contains(out, "/"+u.GetName()+" serverside-applied (server dry run)") {
			t.Errorf("the dry run did not apply %s %s:\n%s", u.GetKind(), u.GetName(), out)
		}
	}
	if strings.Contains(out, "Warning") {
		t.Errorf("the dry run warned:\n%s", out)
	}
}

// The rendered manifests are accepted by the API server, and the Deployment meets the restricted Pod Security
// Standard that its namespace enforces.
func TestDefaultDeploymentApplies(t *testing.T) {
	ctx := testenv.Context(t)
	r := renderDefault(ctx, t)

	applySystemNamespace(ctx, t, r)
	checkDryRun(t, serverSideApply(ctx, t, true, r.raw), r.objs)

	// The check above can fail: the same Deployment with runAsNonRoot: false draws a Pod Security warning.
	bad := r.deployment.DeepCopy()
	bad.Spec.Template.Spec.SecurityContext.RunAsNonRoot = new(bool)
	bad.APIVersion, bad.Kind = "apps/v1", "Deployment"
	b, err := runtime.DefaultUnstructuredConverter.ToUnstructured(bad)
	if err != nil {
		t.Fatal(err)
	}
	badJSON, err := (&unstructured.Unstructured{Object: b}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if out := serverSideApply(ctx, t, true, badJSON); !strings.Contains(out, `would violate PodSecurity "restricted`) {
		t.Errorf("a Deployment running as root drew no Pod Security warning:\n%s", out)
	}
}

// config/argocd installs the health check into an existing argocd-cm without touching its other keys.
func TestArgoCDHealthCheckInstalls(t *testing.T) {
	ctx := testenv.Context(t)
	script, err := os.ReadFile(argocd.ScriptPath())
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{"Customer", "Product", "Price", "Subscription", "Coupon", "PromotionCode", "TaxRate", "Meter",
		"BillingPortalConfiguration", "EntitlementFeature"}
	key := func(kind string) string {
		return "resource.customizations.health." + billingv1.GroupVersion.Group + "_" + kind
	}

	objs := testenv.DecodeAll(t, env.Kustomize(ctx, t, "argocd"))
	if len(objs) != 1 || objs[0].GetKind() != "ConfigMap" || objs[0].GetName() != "argocd-cm" {
		t.Fatalf("config/argocd must render the argocd-cm ConfigMap alone, got %d objects", len(objs))
	}
	cm := &corev1.ConfigMap{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(objs[0].Object, cm); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, k := range kinds {
		want[key(k)] = string(script)
	}
	if diff := cmp.Diff(want, cm.Data); diff != "" {
		t.Errorf("rendered argocd-cm data (-want +got):\n%s", diff)
	}
	if cm.Labels["app.kubernetes.io/part-of"] != "argocd" {
		t.Errorf("argocd-cm lacks the label app.kubernetes.io/part-of=argocd, by which Argo CD finds it: %v", cm.Labels)
	}

	// An Argo CD installation: its argocd-cm already holds settings.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cm.Namespace}}
	existing := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "argocd-cm", Namespace: cm.Namespace,
			Labels: map[string]string{"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"}},
		Data: map[string]string{"url": "https://argocd.example.com", "timeout.reconciliation": "180s"},
	}
	for _, o := range []client.Object{ns, existing} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ns) })
	cmd := env.KubectlCommand(ctx, "apply", "--server-side", "--field-manager=stripe-operator", "-k",
		filepath.Join(testenv.RepoRoot(), "config", "argocd"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply --server-side -k config/argocd: %v\n%s", err, out)
	}
	got := &corev1.ConfigMap{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(existing), got); err != nil {
		t.Fatal(err)
	}
	for k, v := range existing.Data {
		want[k] = v
	}
	if diff := cmp.Diff(want, got.Data); diff != "" {
		t.Errorf("argocd-cm after the install (-want +got):\n%s", diff)
	}
	// What is stored is the script that runs.
	h, err := argocd.Evaluate(got.Data[key("Subscription")], map[string]any{
		"metadata": map[string]any{"generation": int64(1)},
		"status": map[string]any{"observedGeneration": int64(1), "conditions": []any{map[string]any{
			"type": billingv1.ConditionReady, "status": "True", "reason": billingv1.ReasonSynced, "message": "In sync"}}},
	})
	if err != nil || h.Status != "Healthy" {
		t.Errorf("the installed health check says %+v (%v), want Healthy", h, err)
	}
}

// The health check on objects as the API server serves them, through their life: created, reconciled, changed,
// stalled, deleted (deletion bumps metadata.generation).
func TestArgoCDHealthOfServedObjects(t *testing.T) {
	ctx, ns := newNamespace(t)
	script, err := argocd.LoadScript()
	if err != nil {
		t.Fatal(err)
	}
	cus := validCustomer(ns, "argocd")
	cus.Finalizers = []string{billingv1.Finalizer}
	if err := env.Client.Create(ctx, cus); err != nil {
		t.Fatal(err)
	}
	check := func(step, want, wantMessage string) {
		t.Helper()
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(billingv1.GroupVersion.WithKind("Customer"))
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cus), u); err != nil {
			t.Fatal(err)
		}
		h, err := argocd.Evaluate(script, u.Object)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if h.Status != want || !strings.Contains(h.Message, wantMessage) {
			t.Errorf("%s: %s %q, want %s containing %q", step, h.Status, h.Message, want, wantMessage)
		}
	}
	setStatus := func(observed int64, conds ...metav1.Condition) {
		t.Helper()
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cus), cus); err != nil {
			t.Fatal(err)
		}
		cus.Status.ID = "cus_Argo1"
		cus.Status.ObservedGeneration = observed
		cus.Status.Conditions = nil
		for _, c := range conds {
			c.ObservedGeneration = observed
			c.LastTransitionTime = metav1.Now()
			cus.Status.Conditions = append(cus.Status.Conditions, c)
		}
		if err := env.Client.Status().Update(ctx, cus); err != nil {
			t.Fatal(err)
		}
	}

	check("created", "Progressing", "Waiting for the operator to report status")
	setStatus(1, metav1.Condition{Type: billingv1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: billingv1.ReasonSynced, Message: "In sync with Stripe"})
	check("reconciled", "Healthy", "In sync with Stripe")

	cus.Spec.Name = "Acme Holdings"
	if err := env.Client.Update(ctx, cus); err != nil {
		t.Fatal(err)
	}
	check("spec changed", "Progressing", "generation 2 (observed 1)")

	setStatus(2,
		metav1.Condition{Type: billingv1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: billingv1.ReasonInvalidRequest, Message: "Invalid email address"},
		metav1.Condition{Type: billingv1.ConditionStalled, Status: metav1.ConditionTrue,
			Reason: billingv1.ReasonInvalidRequest, Message: "Invalid email address"})
	check("stalled", "Degraded", "InvalidRequest: Invalid email address")

	if err := env.Client.Delete(ctx, cus); err != nil {
		t.Fatal(err)
	}
	check("deleted", "Progressing", "Pending deletion")
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cus), cus); err != nil {
		t.Fatal(err)
	}
	if cus.Generation != 3 {
		t.Errorf("deletion left generation %d, want 3 (the health check relies on the bump)", cus.Generation)
	}
	setStatus(3,
		metav1.Condition{Type: billingv1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: billingv1.ReasonAuthenticationFailed, Message: "Invalid API Key provided"},
		metav1.Condition{Type: billingv1.ConditionStalled, Status: metav1.ConditionTrue,
			Reason: billingv1.ReasonAuthenticationFailed, Message: "Invalid API Key provided"})
	check("deletion stalled", "Degraded", "Deletion stalled: AuthenticationFailed")

	cus.Finalizers = nil
	if err := env.Client.Update(ctx, cus); err != nil {
		t.Fatal(err)
	}
}
