package chaos

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// buildOperator builds cmd/stripe-operator once into a temporary directory.
func buildOperator(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stripe-operator")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/stripe-operator")
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/stripe-operator: %v\n%s", err, out)
	}
	return bin
}

// proc is one operator process that the suite starts, SIGKILLs and starts again. Its output of every run goes to
// one log file.
type proc struct {
	name      string
	bin       string
	args      []string
	probeAddr string
	logPath   string

	mu         sync.Mutex
	cmd        *exec.Cmd
	exited     chan struct{}
	exitErr    error
	killing    bool
	startedAt  time.Time
	readyAt    time.Time
	starts     int
	kills      int
	unexpected []string // how it exited when nobody killed it
}

func newProc(name, bin, logDir, probeAddr string, args ...string) *proc {
	return &proc{name: name, bin: bin, probeAddr: probeAddr, logPath: filepath.Join(logDir, name+".log"),
		args: append(args, "--health-probe-bind-address", probeAddr)}
}

// start runs the process; its readiness is polled by ready.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	p.starts++
	_, _ = fmt.Fprintf(f, "=== chaos: start %d of %s at %s\n", p.starts, p.name, time.Now().Format(time.RFC3339Nano))
	// Not bound to a context: the suite ends every run itself, by SIGKILL or, at the end, SIGTERM.
	cmd := exec.CommandContext(context.Background(), p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.killing, p.startedAt, p.readyAt = cmd, exited, false, time.Now(), time.Time{}
	go func() {
		err := cmd.Wait()
		_ = f.Close()
		p.mu.Lock()
		p.exitErr = err
		if !p.killing {
			p.unexpected = append(p.unexpected, fmt.Sprintf("run %d exited by itself: %v", p.starts, err))
		}
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// running reports whether the current run has not exited.
func (p *proc) running() bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the current run and waits for it to exit.
func (p *proc) signal(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.killing = true
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signalling %s: %w", p.name, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("%s still running %v after %v", p.name, wait, sig)
	}
}

// kill SIGKILLs the current run: no shutdown hooks, no lease release, requests in flight cut.
func (p *proc) kill() error {
	if err := p.signal(syscall.SIGKILL, 10*time.Second); err != nil {
		return err
	}
	p.mu.Lock()
	p.kills++
	p.mu.Unlock()
	return nil
}

// stop ends the run with SIGTERM, or SIGKILL if it does not stop in time.
func (p *proc) stop() {
	if err := p.signal(syscall.SIGTERM, 20*time.Second); err != nil {
		_ = p.signal(syscall.SIGKILL, 10*time.Second)
	}
}

// ready polls /readyz once and remembers when the run first answered 200.
func (p *proc) ready(ctx context.Context) bool {
	p.mu.Lock()
	readyAt := p.readyAt
	p.mu.Unlock()
	if !readyAt.IsZero() {
		return true
	}
	if !p.running() {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.probeAddr+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	p.mu.Lock()
	p.readyAt = time.Now()
	p.mu.Unlock()
	return true
}

// readyFor is how long the current run has been ready (0 if it is not).
func (p *proc) readyFor() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readyAt.IsZero() {
		return 0
	}
	return time.Since(p.readyAt)
}

// waitReady waits until the current run answers /readyz.
func (p *proc) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.ready(ctx) {
			return nil
		}
		if !p.running() {
			return fmt.Errorf("%s exited before it was ready:\n%s", p.name, p.tail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %v:\n%s", p.name, timeout, p.tail(40))
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return err.Error()
	}
	defer func() { _ = f.Close() }()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 4*n {
			lines = lines[len(lines)-n:]
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (p *proc) counts() (starts, kills int, unexpected []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts, p.kills, append([]string(nil), p.unexpected...)
}
