// Command localcluster runs a local Kubernetes control plane (etcd and kube-apiserver built from source by
// hack/control-plane.sh) with the operator's CRDs installed, writes an admin kubeconfig, and runs until interrupted.
// `make run` uses it; it is a development tool, not part of the operator.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

func main() {
	kubeconfig := flag.String("write-kubeconfig", "bin/dev/kubeconfig", "Where to write the admin kubeconfig.")
	flag.Parse()
	if err := run(*kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run(kubeconfig string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()

	data, err := os.ReadFile(env.Kubeconfig)
	if err != nil {
		return fmt.Errorf("reading the kubeconfig: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(kubeconfig), 0o700); err != nil {
		return fmt.Errorf("creating the kubeconfig directory: %w", err)
	}
	// Written last and atomically: its appearance tells callers the control plane is ready.
	tmp := kubeconfig + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil { //nolint:gosec // G703: the path is the developer's own flag

		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	if err := os.Rename(tmp, kubeconfig); err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	defer func() { _ = os.Remove(kubeconfig) }()
	fmt.Printf("localcluster: control plane ready; kubeconfig %s, kubectl %s\n", kubeconfig, env.Kubectl)
	<-ctx.Done()
	fmt.Println("localcluster: stopping")
	return nil
}
