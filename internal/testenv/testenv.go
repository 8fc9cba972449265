// Package testenv starts a real kube-apiserver and etcd for tests, with the operator's generated CRDs installed.
//
// The binaries come from KUBEBUILDER_ASSETS, which `make test` sets to the directory printed by
// hack/control-plane.sh. When it is unset (a plain `go test`), Start runs that script itself: it builds the control
// plane from source the first time and reuses the cache afterwards.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	billingv1 "github.com/stripe-operator/stripe-operator/api/v1"
)

// Env is a running control plane.
type Env struct {
	// Config reaches the API server as a cluster administrator.
	Config *rest.Config
	// Client is a client for Config with the operator's scheme.
	Client client.Client
	// Scheme holds the Kubernetes and billing types.
	Scheme *kruntime.Scheme
	// Kubeconfig is the path of a kubeconfig file for Config, for kubectl and the operator binary.
	Kubeconfig string
	// Kubectl is the path of the kubectl built with the control plane.
	Kubectl string

	env *envtest.Environment
	dir string
}

// RepoRoot is the root of the checkout.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Assets returns the directory holding kube-apiserver, etcd and kubectl, building them if needed.
func Assets() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	return runScript("control-plane.sh")
}

// runScript runs a hack/ script and returns the last line it printed to stdout.
func runScript(name string, env ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	script := filepath.Join(RepoRoot(), "hack", name)
	cmd := exec.CommandContext(context.Background(), "bash", script) //nolint:gosec // G204: our own script
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/%s: %w: %s", name, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return lines[len(lines)-1], nil
}

// Scheme returns a scheme with the Kubernetes and billing types.
func Scheme() *kruntime.Scheme {
	s := kruntime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(billingv1.AddToScheme(s))
	return s
}

// Start starts etcd and kube-apiserver, installs the CRDs from config/crd/bases and writes an admin kubeconfig.
func Start() (*Env, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	e := &Env{
		Scheme:  Scheme(),
		Kubectl: filepath.Join(assets, "kubectl"),
		env: &envtest.Environment{
			BinaryAssetsDirectory: assets,
			CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
			ErrorIfCRDPathMissing: true,
		},
	}
	if e.dir, err = os.MkdirTemp("", "stripe-operator-testenv-"); err != nil {
		return nil, fmt.Errorf("creating a temporary directory: %w", err)
	}
	token, err := e.tokenFile()
	if err != nil {
		_ = os.RemoveAll(e.dir)
		return nil, err
	}
	cfg, err := e.env.Start()
	if err != nil {
		_ = os.RemoveAll(e.dir)
		return nil, fmt.Errorf("starting the control plane from %s: %w", assets, err)
	}
	e.Config = bearerConfig(cfg, token)
	if err := e.finishStart(); err != nil {
		_ = e.Stop()
		return nil, err
	}
	return e, nil
}

func (e *Env) finishStart() error {
	var err error
	// A client that can also watch (the benchmarks wait on watches, as kubectl wait does, not on repeated lists).
	if e.Client, err = client.NewWithWatch(e.Config, client.Options{Scheme: e.Scheme}); err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}
	kubeconfig, err := kubeconfigFor(e.Config)
	if err != nil {
		return fmt.Errorf("rendering the admin kubeconfig: %w", err)
	}
	e.Kubeconfig = filepath.Join(e.dir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	return nil
}

// EtcdURL is the client URL of the control plane's etcd (its /metrics and its JSON gateway /v3/...), for
// benchmarks that measure what the API server keeps.
func (e *Env) EtcdURL() string {
	if e.env == nil || e.env.ControlPlane.Etcd == nil || e.env.ControlPlane.Etcd.URL == nil {
		return ""
	}
	return e.env.ControlPlane.Etcd.URL.String()
}

// Stop stops the control plane and removes the kubeconfig.
func (e *Env) Stop() error {
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
	return e.env.Stop()
}

// Namespace creates a namespace with a generated name for one test and returns its name.
func (e *Env) Namespace(ctx context.Context, prefix string) (string, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := e.Client.Create(ctx, ns); err != nil {
		return "", fmt.Errorf("creating a namespace: %w", err)
	}
	return ns.Name, nil
}

// KubectlCommand returns a kubectl command against the test API server.
func (e *Env) KubectlCommand(ctx context.Context, args ...string) *exec.Cmd {
	//nolint:gosec // G204: tests run the kubectl built by hack/control-plane.sh with their own arguments
	cmd := exec.CommandContext(ctx, e.Kubectl, append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.Kubeconfig)
	return cmd
}

// tokenFile writes a static token file naming a cluster administrator and has the API server read it; it returns
// the token. Clients authenticate with it, as the operator does in a cluster (a service account's token): a client
// certificate, envtest's default, is verified again on every request (ECDSA), where a token's authentication is
// cached, and that verification was about 5% of the API server's CPU under the benchmarks' load.
func (e *Env) tokenFile() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := hex.EncodeToString(b)
	path := filepath.Join(e.dir, "tokens.csv")
	if err := os.WriteFile(path, []byte(token+`,test-admin,test-admin,"system:masters"`+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing the token file: %w", err)
	}
	e.env.ControlPlane.GetAPIServer().Configure().Set("token-auth-file", path)
	return token, nil
}

// bearerConfig is cfg (envtest's administrator) authenticating with token instead of its client certificate.
func bearerConfig(cfg *rest.Config, token string) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.CertData, out.KeyData, out.CertFile, out.KeyFile = nil, nil, "", ""
	out.BearerToken = token
	return out
}

// kubeconfigFor renders cfg (server, CA and token) as a self-contained kubeconfig.
func kubeconfigFor(cfg *rest.Config) ([]byte, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["testenv"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["test-admin"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["testenv"] = &clientcmdapi.Context{Cluster: "testenv", AuthInfo: "test-admin"}
	kc.CurrentContext = "testenv"
	return clientcmd.Write(*kc)
}
