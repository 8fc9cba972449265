package operator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/stripe-operator/stripe-operator/controllers"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
)

// The alerts in config/prometheus must watch metrics the operator exports: a misspelled or removed metric makes an
// alert silently never fire. The test renders the rules, starts the operator against the test API server, scrapes
// its real /metrics endpoint, and fails for any metric name an alert uses that the scrape does not have.

const prometheusDir = "../../config/prometheus"

type alertRule struct {
	Alert string `json:"alert"`
	Expr  string `json:"expr"`
}

// manifest is what the test reads of the YAML documents in config/prometheus and config/manager.
type manifest struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Groups []struct {
			Name  string      `json:"name"`
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
		// ServiceMonitor
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port string `json:"port"`
			Path string `json:"path"`
		} `json:"endpoints"`
		// Service
		Ports []namedPort `json:"ports"`
	} `json:"spec"`
}

type namedPort struct {
	Name string `json:"name"`
}

// readManifests decodes every YAML document of the files matching pattern.
func readManifests(t *testing.T, pattern string) []manifest {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	var out []manifest
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(data)), 4096)
		for {
			var m manifest
			if err := dec.Decode(&m); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if m.Kind != "" {
				out = append(out, m)
			}
		}
	}
	return out
}

func alertRules(t *testing.T) []alertRule {
	t.Helper()
	var rules []alertRule
	for _, m := range readManifests(t, filepath.Join(prometheusDir, "*.yaml")) {
		if m.Kind != "PrometheusRule" {
			continue
		}
		for _, g := range m.Spec.Groups {
			rules = append(rules, g.Rules...)
		}
	}
	return rules
}

// scrape is what a /metrics page exports: the names of its samples, and the type of each family.
type scrape struct {
	samples map[string]bool
	types   map[string]string
}

func parseScrape(r io.Reader) (scrape, error) {
	s := scrape{samples: map[string]bool{}, types: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if f := strings.Fields(rest); len(f) == 2 {
				s.types[f[0]] = f[1]
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if end := strings.IndexAny(line, "{ "); end > 0 {
			s.samples[line[:end]] = true
		}
	}
	return s, sc.Err()
}

// missingMetrics checks every alert's metric names against a scrape and describes the ones it does not export.
// Histograms and summaries export only name_bucket, name_sum and name_count samples (summaries also name), so a
// histogram's bare name is reported with a hint.
func missingMetrics(rules []alertRule, s scrape) []string {
	var out []string
	for _, r := range rules {
		for _, name := range metricNames(r.Expr) {
			if s.samples[name] {
				continue
			}
			msg := fmt.Sprintf("alert %s uses %s, which the operator does not export", r.Alert, name)
			if typ := s.types[name]; typ == "histogram" || typ == "summary" {
				msg += fmt.Sprintf(" (a %s: query %s_bucket, %s_sum or %s_count)", typ, name, name, name)
			}
			out = append(out, msg)
		}
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func getMetrics(ctx context.Context, url string) (scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return scrape{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return scrape{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return scrape{}, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseScrape(resp.Body)
}

func TestAlertsUseExportedMetrics(t *testing.T) {
	rules := alertRules(t)
	names := make([]string, 0, len(rules))
	for _, r := range rules {
		if r.Alert == "" || strings.TrimSpace(r.Expr) == "" || len(metricNames(r.Expr)) == 0 {
			t.Errorf("rule %+v has no alert name or selects no metric", r)
		}
		names = append(names, r.Alert)
	}
	// What the alerts must cover.
	for _, want := range []string{"StripePaymentFailuresHigh", "StripeSubscriptionsPaymentFailed", "StripeDisputeOpened",
		"StripeWebhookSignatureFailures", "StripeAPIUnavailable", "StripeRateLimited", "StripeAuthenticationFailed",
		"StripeEventBacklog", "StripeEventProcessingStalled", "StripeObjectsStalled"} {
		if !slices.Contains(names, want) {
			t.Errorf("config/prometheus has no alert %s", want)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns, err := env.Namespace(ctx, "alerts")
	if err != nil {
		t.Fatal(err)
	}
	ref := types.NamespacedName{Namespace: ns, Name: credentials.DefaultSecretName}
	addr := freeAddr(t)
	mgr, err := New(ctx, env.Config, Config{MetricsAddr: addr, ProbeAddr: "0", WebhookAddr: "0",
		SkipNameValidation: true, CredentialsSecret: ref, NamespaceSecretName: ref.Name,
		Controllers: controllers.Options{ClusterName: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	// The state gauges appear once the leader's caches have synced: wait for the scrape to settle.
	url := "http://" + addr + "/metrics"
	var s scrape
	var missing []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, err = getMetrics(ctx, url)
		if err == nil {
			if missing = missingMetrics(rules, s); len(missing) == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatal(err)
			}
			t.Fatalf("after 60 s:\n%s", strings.Join(missing, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d alerts checked against %d exported series names", len(rules), len(s.samples))

	// The checker catches a misspelled name, and a histogram queried without its _bucket suffix.
	broken := []alertRule{
		{Alert: "Misspelled", Expr: `sum(increase(stripe_operator_disputes_totl{event="created"}[15m])) > 0`},
		{Alert: "BareHistogram", Expr: `histogram_quantile(0.99, sum by (le) (rate(` +
			`stripe_operator_stripe_request_duration_seconds[5m])))`},
	}
	got := missingMetrics(broken, s)
	if len(got) != 2 || !strings.Contains(got[0], "stripe_operator_disputes_totl") ||
		!strings.Contains(got[1], "query stripe_operator_stripe_request_duration_seconds_bucket") {
		t.Errorf("the checker reported %q for broken rules", got)
	}
	// And a rule from the file, mutated, fails too.
	for _, r := range rules {
		if r.Alert == "StripeObjectsStalled" {
			r.Expr = strings.Replace(r.Expr, "stripe_operator_objects_stalled_oldest_seconds",
				"stripe_operator_object_stalled_oldest_seconds", 1)
			if got := missingMetrics([]alertRule{r}, s); len(got) != 1 {
				t.Errorf("a mutated StripeObjectsStalled passed: %q", got)
			}
		}
	}
}

// The ServiceMonitor selects the metrics Service by its labels and scrapes its port named metrics.
func TestServiceMonitorSelectsTheMetricsService(t *testing.T) {
	want := map[string]string{"app.kubernetes.io/name": "stripe-operator", "app.kubernetes.io/component": "metrics"}
	var monitors int
	for _, m := range readManifests(t, filepath.Join(prometheusDir, "*.yaml")) {
		if m.Kind != "ServiceMonitor" {
			continue
		}
		monitors++
		sel := m.Spec.Selector.MatchLabels
		if len(sel) != len(want) || sel["app.kubernetes.io/name"] != want["app.kubernetes.io/name"] ||
			sel["app.kubernetes.io/component"] != want["app.kubernetes.io/component"] {
			t.Errorf("ServiceMonitor selects %v, want %v", sel, want)
		}
		if len(m.Spec.Endpoints) != 1 || m.Spec.Endpoints[0].Port != "metrics" || m.Spec.Endpoints[0].Path != "/metrics" {
			t.Errorf("ServiceMonitor endpoints %+v", m.Spec.Endpoints)
		}
	}
	if monitors != 1 {
		t.Fatalf("%d ServiceMonitors in config/prometheus", monitors)
	}
	// When config/manager has the metrics Service, it carries those labels and names the port.
	for _, m := range readManifests(t, "../../config/manager/*.yaml") {
		if m.Kind != "Service" || m.Metadata.Labels["app.kubernetes.io/component"] != "metrics" {
			continue
		}
		if m.Metadata.Labels["app.kubernetes.io/name"] != want["app.kubernetes.io/name"] ||
			!slices.Contains(m.Spec.Ports, namedPort{Name: "metrics"}) {
			t.Errorf("the metrics Service has labels %v and ports %+v", m.Metadata.Labels, m.Spec.Ports)
		}
	}
}
