package crd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// `make install-manifest` (hack/install-manifest.sh) writes config/default rendered, byte for byte, and the API
// server accepts the file with a server-side dry run, without a warning.
func TestInstallManifest(t *testing.T) {
	ctx := testenv.Context(t)
	out := filepath.Join(t.TempDir(), "dist", "install.yaml")
	cmd := exec.CommandContext(ctx, filepath.Join(testenv.RepoRoot(), "hack", "install-manifest.sh"), out)
	cmd.Env = append(os.Environ(), "KUBECTL="+env.Kubectl)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/install-manifest.sh: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	r := renderDefault(ctx, t)
	if !bytes.Equal(got, r.raw) {
		t.Fatalf("install.yaml differs from config/default rendered (-rendered +install.yaml):\n%s",
			cmp.Diff(string(r.raw), string(got)))
	}
	applySystemNamespace(ctx, t, r)
	checkDryRun(t, serverSideApply(ctx, t, true, got), r.objs)
}
