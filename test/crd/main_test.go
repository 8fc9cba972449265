// Package crd tests the generated CustomResourceDefinitions against a real kube-apiserver: the samples are accepted,
// bad objects are refused with messages a user understands, the status subresource works, and kubectl prints the
// columns. It also checks the deployment: config/default renders into the objects an operator with two replicas
// needs and the API server accepts them, and config/argocd installs the Argo CD health check.
package crd

import (
	"testing"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, func(e *testenv.Env) { env = e }) }
