package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stripe-operator/stripe-operator/internal/operator"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, func(e *testenv.Env) { env = e }) }

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stripe-operator")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// waitHTTP polls url until it answers 200 or the deadline passes, and returns the last status and body.
func waitHTTP(ctx context.Context, url string) (int, string) {
	var code int
	var body string
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			_ = resp.Body.Close()
			code, body = resp.StatusCode, b.String()
			if code == http.StatusOK {
				return code, body
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return code, body
}

func TestBinaryBecomesReadyAndStopsCleanly(t *testing.T) {
	bin := buildBinary(t)
	ns, err := env.Namespace(context.Background(), "manager")
	if err != nil {
		t.Fatal(err)
	}
	probe, metrics, hooks := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	var logs testenv.SyncBuffer
	cmd := exec.CommandContext(t.Context(), bin, "--kubeconfig", env.Kubeconfig,
		"--health-probe-bind-address", probe, "--metrics-bind-address", metrics, "--webhook-bind-address", hooks,
		"--credentials-secret", ns+"/stripe-credentials",
		"--leader-elect", "--leader-election-namespace", ns)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			if err := <-exited; err != nil {
				t.Logf("operator killed: %v", err)
			}
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code, body := waitHTTP(ctx, "http://"+probe+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz never answered 200 (last %d %q); logs:\n%s", code, body, logs.String())
	}
	if code, _ := waitHTTP(ctx, "http://"+probe+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz answered %d", code)
	}
	if code, body := waitHTTP(ctx, "http://"+metrics+"/metrics"); code != http.StatusOK ||
		!strings.Contains(body, "controller_runtime_") && !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics answered %d without Prometheus metrics", code)
	}

	// The webhook receiver serves on its own port and refuses an unsigned delivery.
	if code, _ := waitHTTP(ctx, "http://"+hooks+"/readyz"); code != http.StatusOK {
		t.Fatalf("receiver /readyz answered %d", code)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+hooks+"/webhooks/stripe",
		strings.NewReader(`{"id":"evt_1","object":"event","type":"customer.updated"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an unsigned delivery got %d, want 400", resp.StatusCode)
	}

	// Leader election took the Lease in the namespace it was told.
	lease := &coordinationv1.Lease{}
	for {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: operator.LeaderElectionID}, lease)
		if err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the leader-election Lease was not taken: %v; logs:\n%s", err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}

	// SIGTERM stops it cleanly, and it releases the Lease on the way out.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; logs:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after SIGTERM; logs:\n%s", logs.String())
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: operator.LeaderElectionID}, lease); err != nil {
		t.Fatal(err)
	}
	if lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" {
		t.Errorf("lease still held by %q after a clean stop", *lease.Spec.HolderIdentity)
	}
	// Logs are structured JSON by default.
	first := strings.SplitN(strings.TrimSpace(logs.String()), "\n", 2)[0]
	if !strings.HasPrefix(first, "{") {
		t.Errorf("first log line is not JSON: %q", first)
	}
}

func TestBinaryIsNotReadyWithoutAPIServer(t *testing.T) {
	bin := buildBinary(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	// A kubeconfig pointing at a closed port: the manager must not report ready.
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://%s"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
users: [{name: u, user: {}}]
current-context: c
`, testenv.FreeAddr(t))
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	probe := testenv.FreeAddr(t)
	cmd := exec.CommandContext(ctx, bin, "--kubeconfig", kubeconfig, "--health-probe-bind-address", probe,
		"--metrics-bind-address", "0", "--webhook-bind-address", "0")
	var logs testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	readyCtx, readyCancel := context.WithTimeout(ctx, 5*time.Second)
	defer readyCancel()
	if code, _ := waitHTTP(readyCtx, "http://"+probe+"/readyz"); code == http.StatusOK {
		t.Errorf("reported ready without an API server")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Logf("operator exited: %v", err)
	}
}

// --webhook-receiver-only runs the receiver alone: it serves webhooks and takes no Lease.
func TestBinaryReceiverOnly(t *testing.T) {
	bin := buildBinary(t)
	ns, err := env.Namespace(context.Background(), "receiver")
	if err != nil {
		t.Fatal(err)
	}
	hooks := testenv.FreeAddr(t)
	var logs testenv.SyncBuffer
	cmd := exec.CommandContext(t.Context(), bin, "--kubeconfig", env.Kubeconfig, "--webhook-receiver-only",
		"--webhook-bind-address", hooks, "--health-probe-bind-address", testenv.FreeAddr(t),
		"--metrics-bind-address", "0", "--leader-elect", "--leader-election-namespace", ns,
		"--credentials-secret", ns+"/stripe-credentials")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code, _ := waitHTTP(ctx, "http://"+hooks+"/readyz"); code != http.StatusOK {
		t.Fatalf("receiver /readyz answered %d; logs:\n%s", code, logs.String())
	}
	time.Sleep(2 * time.Second)
	lease := &coordinationv1.Lease{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: operator.LeaderElectionID}, lease); err == nil {
		t.Error("the receiver-only process took the leader-election Lease")
	}
}
