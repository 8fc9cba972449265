// Command pause is the process of a pod sandbox: it holds the pod's namespaces, reaps the zombies of the processes
// that share its PID namespace, and exits on SIGINT or SIGTERM. hack/node.sh builds it statically and wraps it in an
// image (../ -pause) for the node's containerd, which has no registry to pull Kubernetes' own from.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
