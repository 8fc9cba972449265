package bench

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// defaultResync is the operator's --resync-interval default, which the idle figure is given for.
const defaultResync = 10 * time.Hour

// BenchmarkIdle measures the Stripe calls the operator makes for objects that are in sync and see no change: the
// periodic resync alone (webhooks carry Stripe-side changes). The resync interval is shortened to 20 s so a minute's
// window sees a few resyncs of every object; the calls per object per resync, scaled to the default interval, give
// the hourly figure.
func BenchmarkIdle(b *testing.B) {
	const resync = 20 * time.Second
	n, window := 100, 60*time.Second
	if os.Getenv("BENCH_QUICK") != "" {
		window = 30 * time.Second
	}
	r := startRig(b, rigConfig{rate: 100, resync: resync})
	r.createCatalogue(b, 1)
	objects := 2 + 2*n
	createAll(b, r.ctx, r.c, customersWithSubscriptions(n, 1, false))
	waitAllReady(b, r.ctx, r.c, benchNS, objects, 5*time.Minute)

	time.Sleep(2 * time.Second)
	before := r.sim.Stats()
	time.Sleep(window)
	sc := stripeDelta(before, r.sim.Stats())
	calls, writes := sc.calls, sc.writes
	perResync := float64(calls) / float64(objects) / (window.Seconds() / resync.Seconds())
	extra := map[string]any{"objects": objects, "window_s": window.Seconds(), "measured_resync_interval": resync.String(),
		"resync_interval": defaultResync.String(), "calls": calls, "writes": writes, "machine": "2 cores",
		"date": time.Now().Format("2006-01-02")}
	figure("idle_stripe_calls_per_object_per_resync", perResync, "calls", extra)
	figure("idle_stripe_calls_per_object_hour", perResync*time.Hour.Seconds()/defaultResync.Seconds(), "calls", extra)
	if writes != 0 {
		b.Errorf("%d Stripe writes for objects in sync", writes)
	}
}

// BenchmarkOperatorRSS runs the operator binary as its own process, converges 10,000 Customers (1,000 with
// BENCH_QUICK), and reads its resident memory from /proc.
func BenchmarkOperatorRSS(b *testing.B) {
	n := 10000
	if os.Getenv("BENCH_QUICK") != "" {
		n = 1000
	}
	if v, err := strconv.Atoi(os.Getenv("RSS_N")); err == nil && v >= 0 {
		n = v // RSS_N=0: the operator with no object, what the binary and the runtime take
	}
	// Memory, not speed, is measured: Stripe's side is not the limit here.
	ctx, env, _, url := startStack(b, 2000)
	c := env.Client
	pprofAddr := testenv.FreeAddr(b)
	op := startOperatorProcess(b, env, url, "--stripe-test-rate", "2000", "--webhook-bind-address", "0",
		"--metrics-bind-address", "0", "--pprof-bind-address", pprofAddr)

	start := time.Now()
	objs := make(chan client.Object, n)
	for i := range n {
		objs <- &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: benchNS, Name: fmt.Sprintf("cus-%d", i)},
			Spec: billingv1.CustomerSpec{Email: fmt.Sprintf("c%d@example.com", i), Name: fmt.Sprintf("Customer %d", i),
				Metadata: billingv1.Metadata{"tenant": fmt.Sprintf("t%d", i)}}}
	}
	close(objs)
	if n > 0 {
		createAll(b, ctx, c, objs)
		waitAllReady(b, ctx, c, benchNS, n, 20*time.Minute)
	}
	elapsed := time.Since(start)
	time.Sleep(5 * time.Second)
	m, err := processStatus(op.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	if path := os.Getenv("BENCH_HEAP_PROFILE"); path != "" {
		saveHeapProfile(b, "http://"+pprofAddr+"/debug/pprof/heap?gc=1", path)
	}
	rss := m["VmRSS"]
	// RssFile is the binary's pages in memory; RssAnon the Go heap, stacks and the runtime's own.
	extra := map[string]any{"customers": n, "peak_mib": m["VmHWM"], "rss_anon_mib": m["RssAnon"],
		"rss_file_mib": m["RssFile"], "converge_s": elapsed.Seconds(), "machine": "2 cores",
		"date": time.Now().Format("2006-01-02")}
	name := "operator_rss_mib_10k_customers"
	if n != 10000 {
		name = fmt.Sprintf("operator_rss_mib_%d_customers", n)
	}
	figure(name, rss, "MiB", extra)
}

// startOperatorProcess builds the operator binary and runs it as its own process against the stack, with the
// bench's credentials Secret and stripesim at url, and these flags besides; it is killed when the benchmark ends.
func startOperatorProcess(b *testing.B, env *testenv.Env, url string, args ...string) *exec.Cmd {
	b.Helper()
	op, _ := startProcess(b, "./cmd/stripe-operator", append([]string{"--kubeconfig", env.Kubeconfig,
		"--credentials-secret", benchNS + "/" + credentials.DefaultSecretName, "--stripe-api-base", url,
		"--health-probe-bind-address", "0", "--cluster-name", "bench"}, args...)...)
	return op
}

// startProcess builds the command of package pkg (a path from the repository's root) and runs it with args, its
// output going to the file whose path it returns; it is killed when the benchmark ends.
func startProcess(b *testing.B, pkg string, args ...string) (*exec.Cmd, string) {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, filepath.Base(pkg))
	build := exec.CommandContext(b.Context(), "go", "build", "-o", bin, pkg)
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building %s: %v\n%s", pkg, err, out)
	}
	logPath := filepath.Join(dir, filepath.Base(pkg)+".log")
	logs, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.CommandContext(b.Context(), bin, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stopProcess(cmd); _ = logs.Close() })
	return cmd, logPath
}

// stopProcess kills a process startProcess started and waits for it to end; it may be called again.
func stopProcess(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// processMemory reads a process's resident set and its peak, in MiB, from /proc/<pid>/status.
func processMemory(pid int) (rss, peak float64, err error) {
	m, err := processStatus(pid)
	if err != nil {
		return 0, 0, err
	}
	return m["VmRSS"], m["VmHWM"], nil
}

// processStatus reads the sizes of /proc/<pid>/status (VmRSS, VmHWM, RssAnon, RssFile, ...) in MiB.
func processStatus(pid int) (map[string]float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	out := map[string]float64{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, value, _ := strings.Cut(s.Text(), ":")
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		kb, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, err
		}
		out[name] = kb / 1024
	}
	if out["VmRSS"] == 0 {
		return nil, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return out, s.Err()
}

// saveHeapProfile writes the operator's heap profile (go tool pprof -sample_index=inuse_space reads it).
func saveHeapProfile(b *testing.B, url, path string) {
	resp, err := http.Get(url) //nolint:noctx // the operator's own loopback endpoint
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if _, err := io.Copy(f, resp.Body); err != nil {
		b.Fatal(err)
	}
}
