// Package e2e drives the development environment as a user would: `hack/dev.sh up` (what `make dev-up` runs) starts
// the control plane, stripesim and the operator with its webhook receiver in a private directory on free ports, and
// the tests use the kubectl built from source and Stripe's HTTP API (served by stripesim) only.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// dev holds the environment hack/dev.sh wrote (KUBECONFIG, STRIPE_API_BASE, STRIPE_API_KEY...), and kubectl the path
// of the kubectl built from source.
var (
	dev     map[string]string
	kubectl string
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "stripe-operator-e2e-")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	env, err := devEnv(dir, true)
	if err != nil {
		return 0, err
	}
	devCmd := func(arg string) *exec.Cmd { return devCommand(context.Background(), env, arg) }
	stopped := false
	defer func() {
		if !stopped {
			_ = devCmd("down").Run()
		}
	}()
	if out, err := devCmd("up").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("dev.sh up: %w\n%s", err, out)
	}
	// Running it twice is harmless: the second finds the environment up and leaves it.
	out, err := devCmd("up").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("dev.sh up, a second time: %w\n%s", err, out)
	}
	if !strings.Contains(string(out), "already up") {
		return 0, fmt.Errorf("dev.sh up, a second time, did not find the environment up:\n%s", out)
	}
	if dev, err = readEnv(filepath.Join(dir, "env")); err != nil {
		return 0, err
	}
	assets, err := testenv.Assets()
	if err != nil {
		return 0, err
	}
	kubectl = filepath.Join(assets, "kubectl")
	server, err := apiServerAddr(dev["KUBECONFIG"])
	if err != nil {
		return 0, err
	}
	sim, err := url.Parse(dev["STRIPESIM_URL"])
	if err != nil {
		return 0, err
	}
	code := m.Run()
	stopped = true
	if code != 0 {
		for _, log := range []string{"operator.log", "stripesim.log"} {
			if data, err := os.ReadFile(filepath.Join(dir, log)); err == nil {
				fmt.Fprintf(os.Stderr, "--- %s (last 8 KiB)\n%s\n", log, tail(data, 8<<10))
			}
		}
	}
	return downTwice(devCmd, dir, code, server, sim.Host), nil
}

// devEnv is the environment of a hack/dev.sh run in its own directory on free ports, with the simulator (never a
// real Stripe key from the caller's environment), applying config/samples or not.
func devEnv(dir string, samples bool) ([]string, error) {
	apply := "0"
	if samples {
		apply = "1"
	}
	env := []string{"DEV_DIR=" + dir, "STRIPE_API_KEY=", "STRIPE_WEBHOOK_SECRET=", "DEV_SAMPLES=" + apply}
	for _, name := range []string{"STRIPESIM_PORT", "WEBHOOK_PORT", "METRICS_PORT", "PROBE_PORT"} {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		env = append(env, name+"="+strconv.Itoa(port))
	}
	return env, nil
}

// devCommand runs hack/dev.sh with arg in env (from devEnv).
func devCommand(ctx context.Context, env []string, arg string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(testenv.RepoRoot(), "hack", "dev.sh"), arg)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = testenv.RepoRoot()
	return cmd
}

// leftovers reports what a stopped environment left behind: its files in dir (the recorded process, the env file,
// the kubeconfig) or a process still listening at one of addrs (the API server, stripesim).
func leftovers(dir string, addrs ...string) error {
	for _, name := range []string{"pid", "env", "ready", "kubeconfig"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return fmt.Errorf("%s is left", name)
		}
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	for _, addr := range addrs {
		if conn, err := d.DialContext(context.Background(), "tcp", addr); err == nil {
			_ = conn.Close()
			return fmt.Errorf("%s still listens", addr)
		}
	}
	return nil
}

// apiServerAddr reads the host:port of the API server from a kubeconfig.
func apiServerAddr(kubeconfig string) (string, error) {
	data, err := os.ReadFile(kubeconfig)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "server: "); ok {
			if u, err := url.Parse(v); err == nil && u.Host != "" {
				return u.Host, nil
			}
		}
	}
	return "", fmt.Errorf("no server in %s", kubeconfig)
}

// downTwice stops the environment, checks that a second `down` is harmless and that nothing it started is left
// (see leftovers); a failure turns the exit code into 1.
func downTwice(devCmd func(string) *exec.Cmd, dir string, code int, addrs ...string) int {
	for i := range 2 {
		if out, err := devCmd("down").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: dev.sh down (%d): %v\n%s", i+1, err, out)
			return 1
		}
	}
	if err := leftovers(dir, addrs...); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: after dev.sh down: %v\n", err)
		return 1
	}
	return code
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func freePort() (int, error) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// readEnv parses the `export NAME=value` lines dev.sh writes.
func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the dev environment: %w", err)
	}
	defer func() { _ = f.Close() }()
	vars := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, value, ok := strings.Cut(strings.TrimPrefix(s.Text(), "export "), "=")
		if ok {
			vars[name] = value
		}
	}
	for _, name := range []string{"KUBECONFIG", "STRIPE_API_BASE", "STRIPESIM_URL", "WEBHOOK_URL", "STRIPE_API_KEY",
		"STRIPE_WEBHOOK_SECRET"} {
		if vars[name] == "" {
			return nil, fmt.Errorf("%s: %s is missing or empty", path, name)
		}
	}
	return vars, s.Err()
}

// kc runs kubectl against the dev environment, with stdin when given, and returns its stdout, or an error carrying
// its stderr.
func kc(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kubectl, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+dev["KUBECONFIG"])
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// k is kc for a test: a failure ends the test.
func k(t *testing.T, args ...string) string {
	t.Helper()
	out, err := kc("", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// apply applies a manifest with kubectl.
func apply(t *testing.T, ns, manifest string) {
	t.Helper()
	if _, err := kc(manifest, "apply", "-n", ns, "-f", "-"); err != nil {
		t.Fatal(err)
	}
}

// namespace creates a namespace for one test and deletes it (without waiting) when the test ends.
func namespace(t *testing.T) string {
	t.Helper()
	ns := "e2e-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	k(t, "create", "namespace", ns)
	t.Cleanup(func() { _, _ = kc("", "delete", "namespace", ns, "--wait=false") })
	return ns
}

// get reads one field of an object through kubectl's jsonpath.
func get(t *testing.T, ns, obj, jsonpath string) string {
	t.Helper()
	return k(t, "get", "-n", ns, obj, "-o", "jsonpath="+jsonpath)
}

// stripe calls Stripe's HTTP API (stripesim here) with the dev environment's key and returns the decoded body.
func stripe(t *testing.T, method, path string, form url.Values) map[string]any {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequestWithContext(context.Background(), method, dev["STRIPE_API_BASE"]+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(dev["STRIPE_API_KEY"], "")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	out := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, out)
	}
	return out
}

// field walks a decoded Stripe object: field(o, "items", "data", 0, "price", "id").
func field(o any, path ...any) any {
	for _, p := range path {
		switch p := p.(type) {
		case string:
			m, _ := o.(map[string]any)
			o = m[p]
		case int:
			l, _ := o.([]any)
			if p >= len(l) {
				return nil
			}
			o = l[p]
		}
	}
	return o
}
