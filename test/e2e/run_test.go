package e2e

import (
	"bufio"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `make run` (hack/dev.sh run) serves in the foreground and Ctrl-C stops everything it started.
func TestRunStopsEverythingOnInterrupt(t *testing.T) {
	dir := t.TempDir()
	env, err := devEnv(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := devCommand(ctx, env, "run")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = devCommand(context.Background(), env, "down").Run() })
	printed := make(chan bool, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if strings.Contains(s.Text(), "Ctrl-C stops everything") {
				printed <- true
			}
		}
		close(printed)
	}()
	select {
	case ok := <-printed:
		if !ok {
			t.Fatal("make run exited before it was ready")
		}
	case <-ctx.Done():
		t.Fatal("make run was not ready in time")
	}
	vars, err := readEnv(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	server, err := apiServerAddr(vars["KUBECONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	sim, err := url.Parse(vars["STRIPESIM_URL"])
	if err != nil {
		t.Fatal(err)
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for range printed { // until the script closes its output
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("make run after Ctrl-C: %v", err)
	}
	if err := leftovers(dir, server, sim.Host); err != nil {
		t.Errorf("after Ctrl-C: %v", err)
	}
}
