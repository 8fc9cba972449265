//go:build node

package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/operator"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

const (
	namespace   = "stripe-operator-system"
	release     = "stripe-operator"
	deployment  = "stripe-operator-controller-manager"
	service     = "stripe-operator-webhook-receiver"
	apiKey      = "sk_test_node_suite"
	imageRepo   = "stripe-operator"
	imageTag    = "node"
	rolledTag   = "node-rolled"
	nonrootUser = 65532
)

// TestNode starts the node, installs the operator with the chart and then with dist/install.yaml, and stops the
// node, checking that the host is as it was.
func TestNode(t *testing.T) {
	if reason := cannotRun(); reason != "" {
		t.Skip("this machine cannot run containers: " + reason)
	}
	// One node per machine (its bridge and address are fixed): a second run waits for the first.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "stripe-operator-node.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lock.Close() }) // registered first, so released after the node is down
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "stripe-operator-node-")
	if err != nil {
		t.Fatal(err)
	}
	before := readHost(t, dir)
	stopped := false
	t.Cleanup(func() {
		if !stopped { // a failed test: stop the node anyway (down is idempotent), and say what it left
			if out, err := nodeCmd(context.Background(), dir, "down").CombinedOutput(); err != nil {
				t.Errorf("hack/node.sh down: %v\n%s", err, out)
			}
		}
		_ = os.RemoveAll(dir)
	})
	n := startNode(t, dir)
	n.loadImages(t)

	for _, inst := range []installer{helmInstaller{}, manifestInstaller{}} {
		if !t.Run(inst.name(), func(t *testing.T) { n.exercise(t, inst) }) {
			n.dumpLogs(t)
		}
	}

	t.Run("down restores the host", func(t *testing.T) {
		stopped = true
		for i := range 2 { // the second finds nothing to do
			if out, err := nodeCmd(t.Context(), dir, "down").CombinedOutput(); err != nil {
				t.Fatalf("hack/node.sh down (%d): %v\n%s", i+1, err, out)
			}
		}
		after := readHost(t, dir)
		if !reflect.DeepEqual(before, after) {
			t.Errorf("the host after hack/node.sh down differs from before up:\nbefore %+v\nafter  %+v", before, after)
		}
	})
}

// loadImages builds the operator's image with hack/image.sh (make image) and imports it into the node under two
// tags, the installed one and the one an upgrade rolls to.
func (n *node) loadImages(t *testing.T) {
	t.Helper()
	archive := filepath.Join(n.dir, "stripe-operator.oci.tar")
	cmd := exec.CommandContext(t.Context(), filepath.Join(testenv.RepoRoot(), "hack", "image.sh"), archive)
	cmd.Env = append(os.Environ(), "IMG="+imageRepo+":"+imageTag)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/image.sh: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"load", archive}, {"tag", imageRepo + ":" + imageTag, imageRepo + ":" + rolledTag}} {
		if out, err := nodeCmd(t.Context(), n.dir, args...).CombinedOutput(); err != nil {
			t.Fatalf("hack/node.sh %s: %v\n%s", args[0], err, out)
		}
	}
}

// installer installs the operator one way: the Helm chart or dist/install.yaml.
type installer interface {
	name() string
	// install installs the operator (image tag imageTag) talking to stripesim at simURL, with the webhook-receiver
	// Service's address registered as its webhook endpoint.
	install(t *testing.T, n *node)
	// upgrade rolls the operator to another image tag.
	upgrade(t *testing.T, n *node, tag string)
	// uninstall removes what install installed.
	uninstall(t *testing.T, n *node)
}

// webhookURL is the receiver's URL through its Service, as stripesim on the host reaches it.
func (n *node) webhookURL(t *testing.T) string {
	t.Helper()
	ip := n.get(t, namespace, "service/"+service, "{.spec.clusterIP}")
	if ip == "" {
		t.Fatal("the webhook-receiver Service has no cluster IP")
	}
	return "http://" + ip + "/webhooks/stripe"
}

type helmInstaller struct{}

func (helmInstaller) name() string { return "helm chart" }

func chart() string { return filepath.Join(testenv.RepoRoot(), "charts", "stripe-operator") }

func (helmInstaller) install(t *testing.T, n *node) {
	n.runHelm(t, "install", release, chart(), "-n", namespace, "--create-namespace",
		"--set", "image.repository="+imageRepo, "--set", "image.tag="+imageTag, "--set", "image.pullPolicy=Never",
		"--set", "credentials.create=true", "--set", "credentials.apiKey="+apiKey,
		"--set", "extraArgs={--stripe-api-base="+n.simURL+"}")
	// The Service's address is known once it exists: register it, as a team sets the URL of its Ingress.
	n.runHelm(t, "upgrade", release, chart(), "-n", namespace, "--reuse-values",
		"--set", "webhookPublicURL="+n.webhookURL(t))
}

func (helmInstaller) upgrade(t *testing.T, n *node, tag string) {
	n.runHelm(t, "upgrade", release, chart(), "-n", namespace, "--reuse-values", "--set", "image.tag="+tag)
}

func (helmInstaller) uninstall(t *testing.T, n *node) {
	n.runHelm(t, "uninstall", release, "-n", namespace, "--wait", "--timeout", "2m")
	// The chart's CRDs stay (Helm never deletes them); a full removal deletes them, which waits for every billing
	// object (and its finalizer) to be gone.
	var crds []string
	for _, name := range strings.Fields(n.k(t, "get", "crd", "-o", "name")) {
		if strings.HasSuffix(name, ".billing.stripe-operator.io") {
			crds = append(crds, name)
		}
	}
	n.k(t, append([]string{"delete", "--wait", "--timeout", "2m", "--ignore-not-found"}, crds...)...)
	n.k(t, "delete", "namespace", namespace, "--wait", "--timeout", "2m")
}

type manifestInstaller struct{}

func (manifestInstaller) name() string { return "install.yaml" }

func (manifestInstaller) manifest(t *testing.T, n *node) string {
	out := filepath.Join(n.dir, "install.yaml")
	cmd := exec.CommandContext(t.Context(), filepath.Join(testenv.RepoRoot(), "hack", "install-manifest.sh"), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/install-manifest.sh: %v\n%s", err, b)
	}
	return out
}

func (m manifestInstaller) install(t *testing.T, n *node) {
	manifest := m.manifest(t, n)
	n.k(t, "apply", "--server-side", "-f", manifest)
	n.k(t, "create", "secret", "generic", "stripe-credentials", "-n", namespace, "--from-literal=apiKey="+apiKey)
	// What install.yaml cannot know: where Stripe is (stripesim here) and the receiver's public URL; the image
	// install.yaml names (stripe-operator:dev) is set to the one under test.
	args := []map[string]any{
		{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--stripe-api-base=" + n.simURL},
		{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--webhook-public-url=" +
			n.webhookURL(t)},
		{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": imageRepo + ":" + imageTag},
	}
	patch, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	n.k(t, "patch", "-n", namespace, "deployment/"+deployment, "--type=json", "-p", string(patch))
}

func (manifestInstaller) upgrade(t *testing.T, n *node, tag string) {
	n.k(t, "set", "image", "-n", namespace, "deployment/"+deployment, "manager="+imageRepo+":"+tag)
}

func (m manifestInstaller) uninstall(t *testing.T, n *node) {
	n.k(t, "delete", "-f", filepath.Join(n.dir, "install.yaml"), "--wait", "--timeout", "2m")
}

// exercise installs the operator with inst and checks everything the node shows.
func (n *node) exercise(t *testing.T, inst installer) {
	start := time.Now()
	inst.install(t, n)
	n.waitRolledOut(t)
	pods := n.operatorPods(t)
	if len(pods) != 2 {
		t.Fatalf("operator pods %v, want 2 replicas", pods)
	}
	t.Logf("FIGURE install_seconds=%.1f (%s: install to 2 replicas Ready)", time.Since(start).Seconds(), inst.name())
	if !n.installedOnce {
		n.installedOnce = true
		t.Logf("FIGURE ready_with_operator_seconds=%.1f (from nothing to a Ready node with the operator installed: "+
			"node up, image built and imported, %s installed)", time.Since(n.started).Seconds(), inst.name())
	}

	ns := "billing-" + strings.ReplaceAll(strings.ReplaceAll(inst.name(), " ", "-"), ".", "-")
	n.k(t, "create", "namespace", ns)
	t.Run("samples become Ready", func(t *testing.T) { n.samplesReady(t, ns) })
	t.Run("webhooks reach the pods through the Service", func(t *testing.T) { n.webhooksThroughService(t) })
	t.Run("a payment failure reaches status", func(t *testing.T) { n.paymentFailure(t, ns) })
	t.Run("the security context is what the runtime applied", func(t *testing.T) { n.securityContext(t) })
	t.Run("the leader's pod deleted, the other takes over", func(t *testing.T) { n.leaderHandover(t, ns) })
	t.Run("an upgrade rolls the pods and loses no webhook", func(t *testing.T) { n.rollingUpgrade(t, inst, ns) })
	t.Run("uninstall leaves no finalizer stuck", func(t *testing.T) { n.uninstall(t, inst, ns) })
}

// waitRolledOut waits for the Deployment's rollout and for its two replicas to be Ready.
func (n *node) waitRolledOut(t *testing.T) {
	t.Helper()
	n.k(t, "rollout", "status", "-n", namespace, "deployment/"+deployment, "--timeout", "4m")
	testenv.Eventually(t, time.Minute, func() error {
		if pods := n.operatorPods(t); len(pods) != 2 {
			return fmt.Errorf("operator pods Running and Ready: %v", pods)
		}
		return nil
	})
}

// operatorPods lists the operator's pods that are Running and Ready and not terminating.
func (n *node) operatorPods(t *testing.T) []string {
	t.Helper()
	out := n.get(t, namespace, "pods", `{range .items[*]}{.metadata.name} {.status.phase} `+
		`{.status.conditions[?(@.type=="Ready")].status} {.metadata.deletionTimestamp}{"\n"}{end}`)
	var ready []string
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && strings.HasPrefix(f[0], deployment+"-") && f[1] == "Running" && f[2] == "True" {
			ready = append(ready, f[0])
		}
	}
	return ready
}

func (n *node) samplesReady(t *testing.T, ns string) {
	n.k(t, "apply", "-n", ns, "-k", filepath.Join(testenv.RepoRoot(), "config", "samples"))
	for _, kind := range []string{"customers", "products", "prices", "subscriptions"} {
		n.k(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=2m", kind, "--all")
	}
	// Stripe holds them, made by the pods.
	id := n.get(t, ns, "customer/acme", "{.status.id}")
	if c := n.stripe(t, http.MethodGet, "/v1/customers/"+id, nil); c["email"] != "billing@acme.example" {
		t.Errorf("Stripe's customer %s: %v", id, c)
	}
}

// webhooksThroughService checks that the operator registered the Service's URL and that stripesim's deliveries to
// it were acknowledged and stored as StripeEvents.
func (n *node) webhooksThroughService(t *testing.T) {
	hook := n.webhookURL(t)
	endpoint := n.endpoint(t, hook)
	testenv.Eventually(t, time.Minute, func() error {
		ok := 0
		for _, d := range n.sim.Deliveries() {
			if d.EndpointID == endpoint && d.Status >= 200 && d.Status < 300 {
				ok++
			}
		}
		if ok == 0 {
			return fmt.Errorf("no delivery to %s acknowledged yet", hook)
		}
		return nil
	})
	// A processed event leaves its StripeEvent for an entry in the event ledger naming the object it concerned (a
	// Subscription's: the operator does not register for the creations of Customers).
	testenv.Eventually(t, time.Minute, func() error {
		recorded := n.get(t, namespace, "stripeeventledgers", "{.items[*].events}")
		if !strings.Contains(recorded, "Subscription/") {
			return fmt.Errorf("no processed event of a Subscription in the event ledger: %q", recorded)
		}
		return nil
	})
}

// endpoint finds the webhook endpoint registered for the URL hook.
func (n *node) endpoint(t *testing.T, hook string) string {
	t.Helper()
	var id string
	testenv.Eventually(t, time.Minute, func() error {
		list := n.stripe(t, http.MethodGet, "/v1/webhook_endpoints", nil)
		data, _ := list["data"].([]any)
		for _, e := range data {
			if e, _ := e.(map[string]any); e["url"] == hook {
				id, _ = e["id"].(string)
				return nil
			}
		}
		return fmt.Errorf("no webhook endpoint for %s among %v", hook, data)
	})
	return id
}

// paymentFailure: a subscription on a test clock fails to renew on a declined card; the invoice's event, delivered
// through the Service, sets PaymentFailed and past_due.
func (n *node) paymentFailure(t *testing.T, ns string) {
	clock, _ := n.stripe(t, http.MethodPost, "/v1/test_helpers/test_clocks",
		url.Values{"frozen_time": {"1700000000"}})["id"].(string)
	n.apply(t, ns, fmt.Sprintf(`
apiVersion: billing.stripe-operator.io/v1
kind: Product
metadata: {name: plan}
spec: {name: Plan}
---
apiVersion: billing.stripe-operator.io/v1
kind: Price
metadata: {name: monthly}
spec: {productRef: {name: plan}, currency: usd, unitAmount: 4200, recurring: {interval: month}}
---
apiVersion: billing.stripe-operator.io/v1
kind: Customer
metadata: {name: payer}
spec: {email: payer@example.com, defaultPaymentMethod: pm_card_visa, testClock: %s}
---
apiVersion: billing.stripe-operator.io/v1
kind: Subscription
metadata: {name: plan}
spec:
  customerRef: {name: payer}
  items: [{priceRef: {name: monthly}}]
`, clock))
	n.k(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=2m", "subscription/plan")
	end, err := time.Parse(time.RFC3339, n.get(t, ns, "subscription/plan", "{.status.currentPeriodEnd}"))
	if err != nil {
		t.Fatal(err)
	}
	n.k(t, "patch", "-n", ns, "customer/payer", "--type=merge", "-p",
		`{"spec":{"defaultPaymentMethod":"pm_card_chargeDeclinedInsufficientFunds"}}`)
	gen := n.get(t, ns, "customer/payer", "{.metadata.generation}")
	n.k(t, "wait", "-n", ns, "--for=jsonpath={.status.observedGeneration}="+gen, "--timeout=2m", "customer/payer")
	n.stripe(t, http.MethodPost, "/v1/test_helpers/test_clocks/"+clock+"/advance",
		url.Values{"frozen_time": {strconv.FormatInt(end.Unix()+3600, 10)}})
	n.k(t, "wait", "-n", ns, "--for=condition=PaymentFailed", "--timeout=2m", "subscription/plan")
	n.k(t, "wait", "-n", ns, "--for=jsonpath={.status.stripeStatus}=past_due", "--timeout=2m", "subscription/plan")
	if msg := n.get(t, ns, "subscription/plan", `{.status.conditions[?(@.type=="PaymentFailed")].message}`); !strings.Contains(msg, "insufficient funds") {
		t.Errorf("PaymentFailed message %q", msg)
	}
}

// securityContext reads back, from containerd and from the kernel, what the operator's containers run with.
func (n *node) securityContext(t *testing.T) {
	for _, pod := range n.operatorPods(t) {
		// The Go runtime's soft memory limit follows the container's (512Mi in both install methods): 90% of it.
		logs, err := n.command("", n.kubectl, "logs", "-n", namespace, "pod/"+pod)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs, "Go soft memory limit set from the container's memory limit") ||
			!strings.Contains(logs, `"bytes":483183820`) {
			t.Errorf("%s: no soft memory limit of 90%% of 512Mi in its log", pod)
		}
		id := strings.TrimPrefix(n.get(t, namespace, "pod/"+pod, "{.status.containerStatuses[0].containerID}"),
			"containerd://")
		var info struct {
			Spec struct {
				Process struct {
					User            struct{ UID, GID int }
					NoNewPrivileges bool
					Capabilities    map[string][]string
				}
				Root struct{ Readonly bool }
			}
		}
		if err := json.Unmarshal([]byte(n.ctr(t, "containers", "info", id)), &info); err != nil {
			t.Fatal(err)
		}
		p := info.Spec.Process
		if p.User.UID != nonrootUser || p.User.GID != nonrootUser || !info.Spec.Root.Readonly || !p.NoNewPrivileges {
			t.Errorf("%s: the runtime spec runs user %d:%d, read-only root %v, no new privileges %v",
				pod, p.User.UID, p.User.GID, info.Spec.Root.Readonly, p.NoNewPrivileges)
		}
		for set, caps := range p.Capabilities {
			if len(caps) > 0 {
				t.Errorf("%s: the runtime spec gives %s capabilities %v", pod, set, caps)
			}
		}
		// The running process, as the kernel sees it.
		pid := ""
		for line := range strings.SplitSeq(n.ctr(t, "tasks", "ls"), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == id {
				pid = f[1]
			}
		}
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if pid == "" || err != nil {
			t.Fatalf("%s: no running task for container %s: %v", pod, id, err)
		}
		want := map[string]string{"Uid": "65532\t65532\t65532\t65532", "Gid": "65532\t65532\t65532\t65532",
			"CapPrm": "0000000000000000", "CapEff": "0000000000000000", "CapBnd": "0000000000000000",
			"NoNewPrivs": "1"}
		for line := range strings.SplitSeq(string(status), "\n") {
			if k, v, ok := strings.Cut(line, ":\t"); ok && want[k] != "" {
				if v != want[k] {
					t.Errorf("%s: /proc/%s/status %s %q, want %q", pod, pid, k, v, want[k])
				}
				delete(want, k)
			}
		}
		if len(want) > 0 {
			t.Errorf("%s: /proc/%s/status lacks %v", pod, pid, want)
		}
		mounts, err := os.ReadFile("/proc/" + pid + "/mounts")
		if err != nil {
			t.Fatal(err)
		}
		rootRO := false
		for line := range strings.SplitSeq(string(mounts), "\n") {
			if f := strings.Fields(line); len(f) >= 4 && f[1] == "/" {
				rootRO = slices.Contains(strings.Split(f[3], ","), "ro") // the last mount on / wins
			}
		}
		if !rootRO {
			t.Errorf("%s: the container's root file system is not mounted read-only", pod)
		}
	}
}

// leader returns the pod holding the leader-election Lease.
func (n *node) leader(t *testing.T) string {
	t.Helper()
	holder := n.get(t, namespace, "lease/"+operator.LeaderElectionID, "{.spec.holderIdentity}")
	pod, _, _ := strings.Cut(holder, "_")
	return pod
}

// leaderHandover deletes the leader's pod: the other replica takes the Lease over, and a new object becomes Ready.
func (n *node) leaderHandover(t *testing.T, ns string) {
	var old string
	testenv.Eventually(t, time.Minute, func() error {
		if old = n.leader(t); old == "" {
			return fmt.Errorf("no leader")
		}
		return nil
	})
	pods := n.operatorPods(t)
	if !slices.Contains(pods, old) {
		t.Fatalf("the leader %s is not one of the operator's pods %v", old, pods)
	}
	start := time.Now()
	n.k(t, "delete", "pod", "-n", namespace, old, "--wait=false")
	var leader string
	testenv.Eventually(t, 2*time.Minute, func() error {
		if leader = n.leader(t); leader == "" || leader == old {
			return fmt.Errorf("the Lease is still held by %q", leader)
		}
		return nil
	})
	t.Logf("FIGURE leader_handover_seconds=%.1f (%s to %s)", time.Since(start).Seconds(), old, leader)
	n.apply(t, ns, `
apiVersion: billing.stripe-operator.io/v1
kind: Customer
metadata: {name: after-handover}
spec: {email: after-handover@example.com}
`)
	n.k(t, "wait", "-n", ns, "--for=condition=Ready", "--timeout=2m", "customer/after-handover")
	n.waitRolledOut(t)
}

// rollingUpgrade rolls the Deployment to another image tag while Stripe sends events, and checks that the PDB and
// maxUnavailable 0 kept two replicas Ready throughout and that every event was delivered.
func (n *node) rollingUpgrade(t *testing.T, inst installer, ns string) {
	if mu := n.get(t, namespace, "deployment/"+deployment, "{.spec.strategy.rollingUpdate.maxUnavailable}"); mu != "0" {
		t.Errorf("the Deployment's maxUnavailable is %q, want 0", mu)
	}
	if pdb := n.get(t, namespace, "pdb/"+deployment, "{.spec.maxUnavailable}"); pdb != "1" {
		t.Errorf("the PodDisruptionBudget's maxUnavailable is %q, want 1", pdb)
	}
	endpoint := n.endpoint(t, n.webhookURL(t))
	before := n.get(t, namespace, "pods", "{.items[*].metadata.name}")
	customer := n.get(t, ns, "customer/acme", "{.status.id}")
	scheduledBefore := len(n.sim.ScheduledEvents())

	// Events while the pods roll: the customer's description changed five times a second (customer.updated).
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			_, _ = n.stripeErr(http.MethodPost, "/v1/customers/"+customer,
				url.Values{"metadata[roll]": {strconv.Itoa(i)}})
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	// Ready replicas, sampled through the roll.
	minReady := 2
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			out, err := n.command("", n.kubectl, "get", "deployment", "-n", namespace, deployment, "-o",
				"jsonpath={.status.readyReplicas}")
			if r, convErr := strconv.Atoi(out); err == nil && convErr == nil {
				mu.Lock()
				minReady = min(minReady, r)
				mu.Unlock()
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	time.Sleep(2 * time.Second) // events before the roll too
	start := time.Now()
	inst.upgrade(t, n, rolledTag)
	n.waitRolledOut(t)
	rollout := time.Since(start)
	time.Sleep(2 * time.Second) // and after it
	cancel()
	wg.Wait()

	after := n.operatorPods(t)
	for _, p := range after {
		if strings.Contains(before, p) {
			t.Errorf("pod %s survived the upgrade (pods before: %s)", p, before)
		}
		if img := n.get(t, namespace, "pod/"+p, "{.spec.containers[0].image}"); !strings.HasSuffix(img, ":"+rolledTag) {
			t.Errorf("pod %s runs %s after the upgrade", p, img)
		}
	}
	mu.Lock()
	if minReady < 2 {
		t.Errorf("ready replicas fell to %d during the roll (maxUnavailable 0 keeps 2)", minReady)
	}
	mu.Unlock()

	// Every event scheduled for the endpoint is acknowledged, possibly after retries.
	testenv.Eventually(t, 2*time.Minute, func() error {
		if p, f := n.sim.PendingDeliveries(), n.sim.InFlightDeliveries(); p+f > 0 {
			return fmt.Errorf("%d deliveries pending, %d in flight", p, f)
		}
		return nil
	})
	events, failed, lost := n.deliveryLoss(endpoint, scheduledBefore)
	t.Logf("FIGURE rollout_seconds=%.1f webhook_events=%d failed_attempts=%d lost=%d (%s upgrade)",
		rollout.Seconds(), events, failed, lost, inst.name())
	if events < 10 {
		t.Errorf("only %d events were sent during the roll", events)
	}
	if lost > 0 {
		t.Errorf("%d of %d webhook deliveries were lost during the roll", lost, events)
	}
}

// deliveryLoss counts, for the events scheduled to endpoint after the first skip, the events, the failed attempts,
// and the events never acknowledged.
func (n *node) deliveryLoss(endpoint string, skip int) (events, failed, lost int) {
	acked := map[string]bool{}
	for _, d := range n.sim.Deliveries() {
		if d.EndpointID != endpoint {
			continue
		}
		if d.Status >= 200 && d.Status < 300 {
			acked[d.EventID] = true
		} else {
			failed++
		}
	}
	for _, e := range n.sim.ScheduledEvents()[skip:] {
		if e.EndpointID != endpoint {
			continue
		}
		events++
		if !acked[e.EventID] {
			lost++
		}
	}
	return events, failed, lost
}

// uninstall deletes the billing objects (their finalizers run on the operator's pods), then the operator, and checks
// that nothing is left terminating.
func (n *node) uninstall(t *testing.T, inst installer, ns string) {
	// Every billing kind is in the category "stripe", the kinds added later included.
	n.k(t, "delete", "-n", ns, "stripe", "--all", "--wait", "--timeout", "2m")
	inst.uninstall(t, n)
	n.k(t, "delete", "namespace", ns, "--wait", "--timeout", "2m")
	if out, err := n.command("", n.kubectl, "get", "namespace", namespace, "--ignore-not-found", "-o", "name"); err != nil ||
		strings.TrimSpace(out) != "" {
		// The Helm run deletes its namespace; install.yaml's deletes it as one of its objects.
		t.Errorf("namespace %s is left: %q %v", namespace, out, err)
	}
	if out := n.k(t, "get", "crd", "-o", "name"); strings.Contains(out, "billing.stripe-operator.io") {
		t.Errorf("CRDs left: %s", out)
	}
	n.sim.Reset()
}

// dumpLogs prints the operator's pod logs and the node's component logs after a failure.
func (n *node) dumpLogs(t *testing.T) {
	if out, err := n.command("", n.kubectl, "logs", "-n", namespace, "-l", "app.kubernetes.io/name=stripe-operator",
		"--tail", "60", "--prefix"); err == nil {
		t.Logf("operator logs:\n%s", out)
	}
	if out, err := n.command("", n.kubectl, "get", "pods,events", "-A"); err == nil {
		t.Logf("pods and events:\n%s", out)
	}
	for _, c := range []string{"kubelet", "containerd"} {
		if b, err := os.ReadFile(filepath.Join(n.dir, "logs", c+".log")); err == nil {
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("%s log (end):\n%s", c, b)
		}
	}
}

// stripe calls Stripe's API (stripesim on the node's address); a failure ends the test.
func (n *node) stripe(t *testing.T, method, path string, form url.Values) map[string]any {
	t.Helper()
	out, err := n.stripeErr(method, path, form)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (n *node) stripeErr(method, path string, form url.Values) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, n.simURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(apiKey, "")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	out := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %d %v", method, path, resp.StatusCode, out)
	}
	return out, nil
}
