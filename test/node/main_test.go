//go:build node

// Package node runs the operator the way a platform team does, on a real node: hack/node.sh (what `make node-up`
// runs) starts a single-node cluster built from source whose kubelet runs pods in containerd, the operator's image
// (hack/image.sh, what `make image` runs) is imported into it, and the tests install the Helm chart, then
// dist/install.yaml, with kubectl and the helm CLI only, against stripesim on the node's address. They check what
// only real pods show: both replicas Running and Ready, webhooks delivered through the webhook-receiver Service,
// a leader handover when the leader's pod is deleted, a rolling upgrade that loses no webhook delivery, the security
// context as the container runtime applied it, an uninstall that leaves no finalizer stuck; and that
// `hack/node.sh down` leaves the host as it found it.
//
// Build tag node: `make test-node` runs it (and `make test` runs that). It needs root and a machine that can run
// containers; elsewhere it is skipped with the reason.
package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// The node's fixed settings (hack/node.sh).
const (
	runDir   = "/run/stripe-operator-node"
	bridge   = "stripenode0"
	nodeName = "stripe-operator-node"
)

// node is the cluster one test run started.
type node struct {
	dir        string // NODE_DIR
	kubeconfig string
	kubectl    string
	helm       string
	ip         string // the node's address, where the API server and stripesim listen
	sim        *stripesim.Sim
	simURL     string
	// started is when `hack/node.sh up` was started; installedOnce is set after the first install.
	started       time.Time
	installedOnce bool
}

// cannotRun says why this machine cannot run the node, or "" when it can.
func cannotRun() string {
	if os.Getuid() != 0 {
		return "the node needs root (containers, iptables, cgroups)"
	}
	out, err := exec.CommandContext(context.Background(), script(), "check").CombinedOutput()
	if err != nil {
		return strings.TrimSpace(string(out))
	}
	return ""
}

func script() string { return filepath.Join(testenv.RepoRoot(), "hack", "node.sh") }

// nodeCmd runs hack/node.sh with args for the node in dir.
func nodeCmd(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, script(), args...)
	cmd.Env = append(os.Environ(), "NODE_DIR="+dir)
	cmd.Dir = testenv.RepoRoot()
	return cmd
}

// startNode runs `hack/node.sh up` (twice: the second finds it up), reads its env file and starts stripesim on the
// node's address.
func startNode(t *testing.T, dir string) *node {
	t.Helper()
	helm := os.Getenv("HELM")
	if helm == "" {
		t.Fatal("HELM must name the helm binary (make test-node builds it and sets it)")
	}
	start := time.Now()
	if out, err := nodeCmd(t.Context(), dir, "up").CombinedOutput(); err != nil {
		t.Fatalf("hack/node.sh up: %v\n%s", err, out)
	}
	t.Logf("FIGURE node_ready_seconds=%.1f (hack/node.sh up: from nothing to a Ready node)", time.Since(start).Seconds())
	out, err := nodeCmd(t.Context(), dir, "up").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "already up") {
		t.Fatalf("hack/node.sh up, a second time, did not find the node up: %v\n%s", err, out)
	}
	vars := readExports(t, filepath.Join(dir, "env"))
	n := &node{dir: dir, kubeconfig: vars["KUBECONFIG"], helm: helm, ip: vars["NODE_IP"], started: start}
	assets, err := testenv.Assets()
	if err != nil {
		t.Fatal(err)
	}
	n.kubectl = filepath.Join(assets, "kubectl")
	if n.kubeconfig == "" || net.ParseIP(n.ip) == nil {
		t.Fatalf("the node's env file lacks KUBECONFIG or NODE_IP: %v", vars)
	}
	n.startStripesim(t)
	return n
}

// startStripesim serves the simulator on the node's address, where the pods reach it. Failed deliveries are retried
// on a compressed schedule (1 s to 20 s), so a delivery counts as lost only when every retry failed.
func (n *node) startStripesim(t *testing.T) {
	t.Helper()
	n.sim = stripesim.New(stripesim.Options{StrictPaymentMethods: true})
	n.sim.SetWebhookOptions(stripesim.WebhookOptions{RetrySchedule: []time.Duration{time.Second, 2 * time.Second,
		5 * time.Second, 10 * time.Second, 20 * time.Second}})
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", net.JoinHostPort(n.ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: n.sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	n.simURL = "http://" + l.Addr().String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		n.sim.Close()
	})
}

// readExports parses the `export NAME=value` lines of an env file.
func readExports(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		if name, value, ok := strings.Cut(strings.TrimPrefix(s.Text(), "export "), "="); ok {
			vars[name] = value
		}
	}
	return vars
}

// command runs a program with the node's kubeconfig and returns its stdout, or an error with its stderr.
func (n *node) command(stdin, program string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+n.kubeconfig)
	cmd.Dir = testenv.RepoRoot()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(program), strings.Join(args, " "), err,
			stderr.String())
	}
	return stdout.String(), nil
}

// k runs kubectl; a failure ends the test.
func (n *node) k(t *testing.T, args ...string) string {
	t.Helper()
	out, err := n.command("", n.kubectl, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// apply applies a manifest in namespace ns.
func (n *node) apply(t *testing.T, ns, manifest string) {
	t.Helper()
	if _, err := n.command(manifest, n.kubectl, "apply", "-n", ns, "-f", "-"); err != nil {
		t.Fatal(err)
	}
}

// get reads a field of an object with kubectl's jsonpath.
func (n *node) get(t *testing.T, ns, obj, jsonpath string) string {
	t.Helper()
	return n.k(t, "get", "-n", ns, obj, "-o", "jsonpath="+jsonpath)
}

// runHelm runs the helm CLI; a failure ends the test.
func (n *node) runHelm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := n.command("", n.helm, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ctr runs containerd's client against the node's containerd, in the kubelet's namespace.
func (n *node) ctr(t *testing.T, args ...string) string {
	t.Helper()
	out, err := n.command("", "ctr", append([]string{"--address", runDir + "/containerd.sock", "-n", "k8s.io"},
		args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// hostState is what the node changes on the host, read from the kernel and the file system.
type hostState struct {
	Sysctls  map[string]string
	Iptables string   // the rules and chains of iptables-save and ip6tables-save, without counters
	Links    []string // the bridge and veth interfaces
	Mounts   []string // mount points under the node's directories, /run/netns and the runtime's
	Cgroups  []string // kubepods cgroups
	Paths    []string // the host paths the components create, that exist
	Procs    []string // processes of the node (command lines naming its directory or socket)
}

var (
	watchedSysctls = []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
		"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "net/ipv4/ip_forward",
		"net/ipv4/conf/all/route_localnet", "net/bridge/bridge-nf-call-iptables", "net/ipv6/conf/all/forwarding"}
	builtinChains = map[string]bool{"PREROUTING": true, "INPUT": true, "FORWARD": true, "OUTPUT": true,
		"POSTROUTING": true}
	hostPaths = []string{"/run/containerd", "/run/netns", "/var/lib/cni", "/var/lib/kubelet", "/var/log/containers",
		"/var/log/pods", "/run/mount", runDir}
)

func readHost(t *testing.T, dir string) hostState {
	t.Helper()
	h := hostState{Sysctls: map[string]string{}}
	for _, s := range watchedSysctls {
		if b, err := os.ReadFile("/proc/sys/" + s); err == nil {
			h.Sysctls[s] = strings.TrimSpace(string(b))
		}
	}
	for _, prog := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.CommandContext(t.Context(), prog).Output()
		if err != nil {
			if errors.Is(err, exec.ErrNotFound) {
				continue
			}
			t.Fatalf("%s: %v", prog, err)
		}
		table := ""
		for line := range strings.SplitSeq(string(out), "\n") {
			switch {
			case strings.HasPrefix(line, "*"):
				table = line
			case strings.HasPrefix(line, ":"): // a chain, its policy and counters
				f := strings.Fields(line)
				// Built-in chains that accept: iptables-nft creates them with a table on first use, and they hold
				// nothing; a built-in chain with another policy, and every other chain, count.
				if len(f) >= 2 && builtinChains[strings.TrimPrefix(f[0], ":")] && f[1] == "ACCEPT" {
					continue
				}
				h.Iptables += prog + " " + table + " " + strings.Join(f[:min(2, len(f))], " ") + "\n"
			case strings.HasPrefix(line, "-"):
				h.Iptables += prog + " " + table + " " + line + "\n"
			}
		}
	}
	if ifaces, err := net.Interfaces(); err == nil {
		for _, i := range ifaces {
			if i.Name == bridge || strings.HasPrefix(i.Name, "veth") {
				h.Links = append(h.Links, i.Name)
			}
		}
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for line := range strings.SplitSeq(string(mi), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 {
				continue
			}
			for _, p := range append([]string{dir, "/run/netns", "/run/containerd", runDir}, "/var/lib/kubelet") {
				if f[4] == p || strings.HasPrefix(f[4], p+"/") {
					h.Mounts = append(h.Mounts, f[4])
				}
			}
		}
	}
	cgs, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	h.Cgroups = cgs
	for _, p := range hostPaths {
		if _, err := os.Stat(p); err == nil {
			h.Paths = append(h.Paths, p)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmdline, dir+"/") || strings.Contains(cmdline, runDir+"/") {
			h.Procs = append(h.Procs, cmdline)
		}
	}
	return h
}
