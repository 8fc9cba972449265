package main

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// start runs the binary and waits for /_sim/health; the returned function stops it with SIGTERM.
func start(t *testing.T, bin string, args ...string) func() {
	t.Helper()
	addr := args[1]
	cmd := exec.CommandContext(t.Context(), bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/_sim/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("stripesim never became healthy")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("stripesim exit: %v", err)
		}
	}
}

func TestBinaryServesAndPersistsState(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "stripesim")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	state := filepath.Join(t.TempDir(), "state.json")
	addr := testenv.FreeAddr(t)
	stop := start(t, bin, "-addr", addr, "-state", state, "-test-rate", "1000")
	sc := client.New("sk_test_binary", stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL: stripe.String("http://" + addr), MaxNetworkRetries: stripe.Int64(0),
		EnableTelemetry: stripe.Bool(false), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}}))
	cus, err := sc.Customers.New(&stripe.CustomerParams{Email: stripe.String("bin@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	stop()

	stop = start(t, bin, "-addr", addr, "-state", state)
	defer stop()
	got, err := sc.Customers.Get(cus.ID, nil)
	if err != nil {
		t.Fatalf("customer lost across a restart with -state: %v", err)
	}
	if got.Email != "bin@example.com" {
		t.Errorf("restored customer: %+v", got)
	}
}

// TestBinaryAnyAPIVersion: the binary refuses a Stripe-Version other than 2023-10-16 unless run with
// -any-api-version, and serves stripe-go v76 either way.
func TestBinaryAnyAPIVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "stripesim")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		want int
	}{{nil, http.StatusBadRequest}, {[]string{"-any-api-version"}, http.StatusOK}} {
		addr := testenv.FreeAddr(t)
		stop := start(t, bin, append([]string{"-addr", addr}, tc.args...)...)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/v1/customers", nil)
		req.Header.Set("Authorization", "Bearer sk_test_binary")
		req.Header.Set("Stripe-Version", "2024-04-10")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%v: Stripe-Version 2024-04-10 answered %d, want %d", tc.args, resp.StatusCode, tc.want)
		}
		sc := client.New("sk_test_binary", stripe.NewBackendsWithConfig(&stripe.BackendConfig{
			URL: stripe.String("http://" + addr), MaxNetworkRetries: stripe.Int64(0),
			EnableTelemetry: stripe.Bool(false), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}}))
		if _, err := sc.Customers.New(&stripe.CustomerParams{Email: stripe.String("v@example.com")}); err != nil {
			t.Errorf("%v: stripe-go v76 refused: %v", tc.args, err)
		}
		stop()
	}
}
