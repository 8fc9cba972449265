// Package rbac proves the operator's least privilege against a real kube-apiserver: config/default's RBAC is
// installed for real, SubjectAccessReviews as its ServiceAccount show that only Secrets named stripe-credentials
// are reachable, and the operator runs impersonating that ServiceAccount. It has an API server of its own, so that
// the operator it runs reconciles only this package's objects.
package rbac

import (
	"testing"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, func(e *testenv.Env) { env = e }) }
