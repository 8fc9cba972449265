package testenv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// Context is a context for one test, ended after a minute or with the test.
func Context(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Kustomize renders a directory of config/ with the kubectl built from source.
func (e *Env) Kustomize(ctx context.Context, t *testing.T, dir string) []byte {
	t.Helper()
	out, err := e.KubectlCommand(ctx, "kustomize", filepath.Join(RepoRoot(), "config", dir)).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("kubectl kustomize config/%s: %v\n%s", dir, err, exit.Stderr)
		}
		t.Fatalf("kubectl kustomize config/%s: %v", dir, err)
	}
	return out
}

// DecodeAll splits a multi-document YAML stream into objects, skipping empty documents.
func DecodeAll(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatal(err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}
