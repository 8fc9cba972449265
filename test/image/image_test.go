// Package image builds the operator's image without a Docker daemon (hack/image.sh, what `make image` runs),
// checks its contents, unpacks it and starts it with runc as the Deployment runs it: user 65532, a read-only root
// filesystem, no capabilities, no privilege escalation. The container serves /healthz and /readyz against the test
// API server and reconciles a Customer against stripesim.
//
// runc needs root; without runc on PATH, or as another user, the test that starts the container is skipped (the
// image is still built and checked).
package image

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
	"github.com/stripe-operator/stripe-operator/internal/credentials"
	"github.com/stripe-operator/stripe-operator/internal/stripesim"
	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

var env *testenv.Env

// archive is the image hack/image.sh built for this run.
var archive string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "stripe-operator-image-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	archive = filepath.Join(dir, "stripe-operator.oci.tar")
	cmd := exec.CommandContext(context.Background(), filepath.Join(testenv.RepoRoot(), "hack", "image.sh"), archive)
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "hack/image.sh: %v\n%s", err, out)
		return 1
	}
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "starting the test control plane:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	return m.Run()
}

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
}

// image is an OCI archive unpacked: its config and its root filesystem.
type image struct {
	config struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Config       struct {
			User       string   `json:"User"`
			Entrypoint []string `json:"Entrypoint"`
			Env        []string `json:"Env"`
			WorkingDir string   `json:"WorkingDir"`
		} `json:"config"`
	}
	ref    string
	rootfs string
}

// untar extracts a tar stream into dir, refusing names that leave it.
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(name, filepath.Clean(dir)+string(filepath.Separator)) {
			return fmt.Errorf("%q leaves the directory", h.Name)
		}
		mode := os.FileMode(h.Mode).Perm()
		if h.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				_ = f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%q: unexpected type %c", h.Name, h.Typeflag)
		}
		if err := os.Chmod(name, mode); err != nil {
			return err
		}
		if os.Getuid() == 0 {
			if err := os.Lchown(name, h.Uid, h.Gid); err != nil {
				return err
			}
		}
	}
}

func blob(layoutDir, digest string) string {
	return filepath.Join(layoutDir, "blobs", strings.Replace(digest, ":", string(filepath.Separator), 1))
}

func readJSON(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

// unpack reads the OCI archive: index, manifest, config, and the layers applied in order into a root filesystem.
func unpack(t *testing.T) *image {
	t.Helper()
	dir := t.TempDir()
	layoutDir := filepath.Join(dir, "layout")
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if err := untar(f, layoutDir); err != nil {
		t.Fatalf("unpacking the archive: %v", err)
	}
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := readJSON(filepath.Join(layoutDir, "index.json"), &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 || index.Manifests[0].MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Fatalf("index.json: want one OCI image manifest, got %+v", index.Manifests)
	}
	var manifest struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	if err := readJSON(blob(layoutDir, index.Manifests[0].Digest), &manifest); err != nil {
		t.Fatal(err)
	}
	img := &image{ref: index.Manifests[0].Annotations["org.opencontainers.image.ref.name"],
		rootfs: filepath.Join(dir, "bundle", "rootfs")}
	if err := readJSON(blob(layoutDir, manifest.Config.Digest), &img.config); err != nil {
		t.Fatal(err)
	}
	for _, l := range manifest.Layers {
		if l.MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
			t.Fatalf("layer %s has media type %s", l.Digest, l.MediaType)
		}
		lf, err := os.Open(blob(layoutDir, l.Digest))
		if err != nil {
			t.Fatal(err)
		}
		gz, err := gzip.NewReader(lf)
		if err != nil {
			t.Fatal(err)
		}
		if err := untar(gz, img.rootfs); err != nil {
			t.Fatalf("layer %s: %v", l.Digest, err)
		}
		_ = lf.Close()
	}
	return img
}

// The image holds what the Dockerfile's distroless stage gives, and runs as 65532 with the binary as entrypoint.
func TestImageContents(t *testing.T) {
	img := unpack(t)
	c := img.config.Config
	if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/stripe-operator"}) || c.WorkingDir != "/" {
		t.Errorf("config: user %q, entrypoint %v, working directory %q; want 65532:65532, [/stripe-operator], /",
			c.User, c.Entrypoint, c.WorkingDir)
	}
	if img.config.OS != "linux" || img.config.Architecture == "" {
		t.Errorf("platform %s/%s", img.config.OS, img.config.Architecture)
	}
	if img.ref != "stripe-operator:dev" {
		t.Errorf("the archive names the image %q, want stripe-operator:dev", img.ref)
	}
	for path, want := range map[string]string{
		"etc/passwd": "nonroot:x:65532:65532:", "etc/group": "nonroot:x:65532:",
		"etc/ssl/certs/ca-certificates.crt": "-----BEGIN CERTIFICATE-----",
	} {
		b, err := os.ReadFile(filepath.Join(img.rootfs, path))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("/%s: %v, want it to contain %q", path, err, want)
		}
	}
	bin, err := os.Stat(filepath.Join(img.rootfs, "stripe-operator"))
	if err != nil || bin.Mode().Perm() != 0o755 {
		t.Errorf("/stripe-operator: %v %v, want an executable", err, bin)
	}
	if tmp, err := os.Stat(filepath.Join(img.rootfs, "tmp")); err != nil || tmp.Mode()&os.ModeSticky == 0 {
		t.Errorf("/tmp: %v %v, want a sticky directory", err, tmp)
	}
}

// runcSpec is `runc spec` changed to run the image as the Deployment does, in the host's network namespace (so that
// it reaches the test API server and stripesim on loopback, and the test reaches its probes).
func runcSpec(t *testing.T, bundle string, img *image, args []string, kubeconfig string) {
	t.Helper()
	if out, err := exec.CommandContext(t.Context(), "runc", "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v\n%s", err, out)
	}
	path := filepath.Join(bundle, "config.json")
	var spec map[string]any
	if err := readJSON(path, &spec); err != nil {
		t.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = append(slices.Clone(img.config.Config.Entrypoint), args...)
	proc["env"] = img.config.Config.Env
	proc["cwd"] = img.config.Config.WorkingDir
	proc["user"] = map[string]any{"uid": 65532, "gid": 65532} // the image's USER, as runAsNonRoot checks it
	proc["noNewPrivileges"] = true                            // allowPrivilegeEscalation: false
	proc["capabilities"] = map[string]any{"bounding": []string{}, "effective": []string{}, "permitted": []string{},
		"inheritable": []string{}, "ambient": []string{}} // capabilities: drop: [ALL]
	spec["root"] = map[string]any{"path": "rootfs", "readonly": true} // readOnlyRootFilesystem: true
	spec["mounts"] = append(spec["mounts"].([]any), map[string]any{"destination": "/etc/stripe-operator/kubeconfig",
		"type": "bind", "source": kubeconfig, "options": []string{"rbind", "ro"}})
	linux := spec["linux"].(map[string]any)
	var namespaces []any
	for _, ns := range linux["namespaces"].([]any) {
		if ns.(map[string]any)["type"] != "network" {
			namespaces = append(namespaces, ns)
		}
	}
	linux["namespaces"] = namespaces
	b, err := json.MarshalIndent(spec, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// procStatus reads fields of /proc/<pid>/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

func get(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// The image starts with runc under the Deployment's security context, serves its probes, and reconciles against
// the test API server and stripesim; SIGTERM stops it cleanly.
func TestImageRunsWithRunc(t *testing.T) {
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc is not installed (Debian: apt-get install runc)")
	}
	if os.Getuid() != 0 {
		t.Skip("runc needs root")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	img := unpack(t)
	bundle := filepath.Dir(img.rootfs)

	sim := stripesim.New(stripesim.Options{RateLimitOff: true})
	defer sim.Close()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	ns, err := env.Namespace(ctx, "image")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: credentials.DefaultSecretName},
		Data:       map[string][]byte{credentials.APIKeyField: []byte("sk_test_image")}}); err != nil {
		t.Fatal(err)
	}
	// The admin kubeconfig, readable by user 65532 (the test's own copy is 0600 and root's).
	kc, err := os.ReadFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o644); err != nil {
		t.Fatal(err)
	}

	probe, hooks, metrics := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	runcSpec(t, bundle, img, []string{"--kubeconfig=/etc/stripe-operator/kubeconfig", "--leader-elect",
		"--leader-election-namespace=" + ns, "--health-probe-bind-address=" + probe,
		"--metrics-bind-address=" + metrics, "--webhook-bind-address=" + hooks,
		"--credentials-secret=" + ns + "/" + credentials.DefaultSecretName, "--stripe-api-base=" + srv.URL,
		"--cluster-name=image-test"}, kubeconfig)

	state := t.TempDir()
	id := "stripe-operator-image-" + strings.ReplaceAll(ns, ".", "-")
	var logs testenv.SyncBuffer
	cmd := exec.CommandContext(ctx, "runc", "--root", state, "run", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = exec.CommandContext(context.Background(), "runc", "--root", state, "delete", "--force", id).Run()
		if t.Failed() {
			t.Logf("container output:\n%s", logs.String())
		}
	}()

	// Both probes answer 200 from the container.
	waitFor(t, time.Minute, exited, func() error {
		for _, path := range []string{"/healthz", "/readyz"} {
			code, err := get(ctx, "http://"+probe+path)
			if err != nil || code != http.StatusOK {
				return fmt.Errorf("%s: %d: %w", path, code, err)
			}
		}
		return nil
	})

	// The process runs as 65532 with no capabilities, no new privileges, on a read-only root.
	checkConfinement(ctx, t, state, id)

	// It reaches the API server and stripesim: a Customer becomes Ready.
	cus := &billingv1.Customer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"},
		Spec: billingv1.CustomerSpec{Email: "billing@acme.example", Name: "Acme Corp"}}
	if err := env.Client.Create(ctx, cus); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, exited, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cus), cus); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(cus.Status.Conditions, billingv1.ConditionReady) {
			return fmt.Errorf("the Customer is not Ready: %+v", cus.Status.Conditions)
		}
		return nil
	})
	if code, err := get(ctx, "http://"+hooks+"/readyz"); err != nil || code != http.StatusOK {
		t.Errorf("the webhook receiver's /readyz: %d %v", code, err)
	}

	// SIGTERM: the manager releases its Lease and exits 0.
	if out, err := exec.CommandContext(ctx, "runc", "--root", state, "kill", id, "TERM").CombinedOutput(); err != nil {
		t.Fatalf("runc kill: %v\n%s", err, out)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the container exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("the container did not stop within 30 s of SIGTERM")
	}
	if conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", probe); err == nil {
		_ = conn.Close()
		t.Error("the probes still answer after the container stopped")
	}
}

// checkConfinement reads the container's process from /proc: user 65532, no capabilities, no new privileges, a
// read-only root.
func checkConfinement(ctx context.Context, t *testing.T, state, id string) {
	t.Helper()
	out, err := exec.CommandContext(ctx, "runc", "--root", state, "state", id).Output()
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	status := procStatus(t, st.Pid)
	if uid := strings.Fields(status["Uid"]); len(uid) == 0 || uid[0] != "65532" {
		t.Errorf("the process runs as uid %v, want 65532", status["Uid"])
	}
	for _, c := range []string{"CapEff", "CapPrm", "CapBnd"} {
		if status[c] != "0000000000000000" {
			t.Errorf("%s %s, want none", c, status[c])
		}
	}
	if status["NoNewPrivs"] != "1" {
		t.Errorf("NoNewPrivs %s, want 1", status["NoNewPrivs"])
	}
	mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", st.Pid))
	if err != nil {
		t.Fatal(err)
	}
	rootRO := false
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == "/" {
			rootRO = slices.Contains(strings.Split(f[5], ","), "ro")
		}
	}
	if !rootRO {
		t.Errorf("the container's root is not mounted read-only:\n%s", mounts)
	}
}

// waitFor polls check until it returns nil, the timeout passes, or the container exits.
func waitFor(t *testing.T, timeout time.Duration, exited <-chan error, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		select {
		case e := <-exited:
			t.Fatalf("the container exited: %v (last check: %v)", e, err)
		default:
		}
		if err = check(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("after %s: %v", timeout, err)
}
