package bench

import (
	"context"
	"fmt"
	"slices"

	"github.com/go-logr/logr"
)

// logDiscard returns a logger that prints nothing but keeps the values it is given, so that writerOf can tell
// which controller a request came from.
func logDiscard() logr.Logger { return logr.New(valuesSink{}) }

// valuesSink is a LogSink that discards every message and remembers its key-value pairs.
type valuesSink struct{ kv []any }

func (valuesSink) Init(logr.RuntimeInfo)          {}
func (valuesSink) Enabled(int) bool               { return false }
func (valuesSink) Info(int, string, ...any)       {}
func (valuesSink) Error(error, string, ...any)    {}
func (s valuesSink) WithName(string) logr.LogSink { return s }

func (s valuesSink) WithValues(kv ...any) logr.LogSink {
	return valuesSink{kv: append(slices.Clip(s.kv), kv...)}
}

// writerOf names who made a request from its context: the kind of the controller whose reconcile it belongs to
// (controller-runtime puts a logger with controllerKind, or at least controller, into every reconcile's context),
// else "other".
func writerOf(ctx context.Context) string {
	l, err := logr.FromContext(ctx)
	if err != nil {
		return "other"
	}
	s, ok := l.GetSink().(valuesSink)
	if !ok {
		return "other"
	}
	name := "other"
	for i := 0; i+1 < len(s.kv); i += 2 {
		switch s.kv[i] {
		case "controllerKind":
			return fmt.Sprint(s.kv[i+1])
		case "controller":
			name = fmt.Sprint(s.kv[i+1])
		}
	}
	return name
}
