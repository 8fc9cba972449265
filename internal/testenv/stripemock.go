package testenv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"time"
)

// StripeMock is a running stripe-mock, Stripe's official stateless mock, which validates request shapes against
// Stripe's OpenAPI specification.
type StripeMock struct {
	// URL is the base URL of its HTTP listener.
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
}

var listeningRE = regexp.MustCompile(`Listening for HTTP at address: .*:(\d+)`)

// StartStripeMock starts stripe-mock on a free loopback port. The binary comes from STRIPE_MOCK (set by
// `make test`) or is installed by hack/stripe-mock.sh.
func StartStripeMock() (*StripeMock, error) {
	bin := os.Getenv("STRIPE_MOCK")
	if bin == "" {
		var err error
		if bin, err = runScript("stripe-mock.sh"); err != nil {
			return nil, err
		}
	}
	return startStripeMock(bin)
}

// LaterStripeMockVersion is the stripe-mock whose specification (a 2026 API version) has what 2023-10-16's lacks
// and stripe-go v76.25.0 already sends: billing meters, meter events and a price's recurring[meter].
const LaterStripeMockVersion = "v0.203.0"

// StartLaterStripeMock starts stripe-mock LaterStripeMockVersion, from STRIPE_MOCK_LATER or installed by
// hack/stripe-mock.sh, to validate the request shapes 2023-10-16's specification does not know.
func StartLaterStripeMock() (*StripeMock, error) {
	bin := os.Getenv("STRIPE_MOCK_LATER")
	if bin == "" {
		var err error
		if bin, err = runScript("stripe-mock.sh", "STRIPE_MOCK_VERSION="+LaterStripeMockVersion); err != nil {
			return nil, err
		}
	}
	return startStripeMock(bin)
}

func startStripeMock(bin string) (*StripeMock, error) {
	cmd := exec.CommandContext(context.Background(), bin, "-http-port", "0") //nolint:gosec // G204: pinned tool
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("stripe-mock: %w", err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting stripe-mock: %w", err)
	}
	m := &StripeMock{cmd: cmd, done: make(chan struct{})}
	port := make(chan string, 1)
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if match := listeningRE.FindStringSubmatch(sc.Text()); match != nil {
				port <- match[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
	}()
	select {
	case p := <-port:
		m.URL = "http://127.0.0.1:" + p
		return m, nil
	case <-m.done:
		return nil, fmt.Errorf("stripe-mock exited before listening")
	case <-time.After(30 * time.Second):
		m.Stop()
		return nil, fmt.Errorf("stripe-mock did not listen within 30 s")
	}
}

// Stop stops stripe-mock.
func (m *StripeMock) Stop() {
	_ = m.cmd.Process.Kill()
	<-m.done
}
