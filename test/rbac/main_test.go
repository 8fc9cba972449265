// Package rbac proves the operator's least privilege against a real kube-apiserver: config/default's RBAC is
// installed for real, SubjectAccessReviews as its ServiceAccount show that only Secrets named stripe-credentials
// are reachable, and the operator runs impersonating that ServiceAccount. It has an API server of its own, so that
// the operator it runs reconciles only this package's objects.
package rbac

import (
	"fmt"
	"os"
	"testing"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "starting the test control plane:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the test control plane:", err)
	}
	os.Exit(code)
}
