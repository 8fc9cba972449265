// Package argocd runs the Argo CD health check shipped in config/argocd/health.lua the way Argo CD runs a health
// script: gopher-lua with only the package, base and table libraries open, the object as the global obj, a one-second
// limit, and the table {status = ..., message = ...} the script returns as the verdict.
package argocd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/stripe-operator/stripe-operator/internal/testenv"
)

// Statuses are the health statuses Argo CD accepts from a script; it turns any other into Unknown.
var Statuses = []string{"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

// Health is the verdict of a health script.
type Health struct {
	Status  string
	Message string
}

// ScriptPath is the path of the health check in the checkout.
func ScriptPath() string {
	return filepath.Join(testenv.RepoRoot(), "config", "argocd", "health.lua")
}

// LoadScript reads config/argocd/health.lua.
func LoadScript() (string, error) {
	b, err := os.ReadFile(ScriptPath())
	if err != nil {
		return "", fmt.Errorf("reading the health check: %w", err)
	}
	return string(b), nil
}

// Evaluate runs script with obj (an object as decoded from the API server's JSON, or an unstructured object's
// content) as the global obj, and returns the table it returns. A script error, a returned value that is not a
// table, or a status Argo CD does not know is an error.
func Evaluate(script string, obj map[string]any) (Health, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), Protect: true}, lua.LString(lib.name)); err != nil {
			return Health{}, fmt.Errorf("opening the Lua library %q: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)

	value, err := toLua(l, obj)
	if err != nil {
		return Health{}, err
	}
	l.SetGlobal("obj", value)
	if err := l.DoString(script); err != nil {
		return Health{}, fmt.Errorf("running the health check: %w", err)
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return Health{}, fmt.Errorf("the health check returned a %s, not a table", l.Get(-1).Type())
	}
	h := Health{}
	for field, dst := range map[string]*string{"status": &h.Status, "message": &h.Message} {
		switch v := ret.RawGetString(field).(type) {
		case lua.LString:
			*dst = string(v)
		case *lua.LNilType:
		default:
			return Health{}, fmt.Errorf("the health check returned a %s as %s", v.Type(), field)
		}
	}
	if !slices.Contains(Statuses, h.Status) {
		return Health{}, fmt.Errorf("the health check returned the status %q, which Argo CD reads as Unknown", h.Status)
	}
	return h, nil
}

// toLua converts a JSON-shaped Go value (maps, slices, strings, numbers, booleans, nil) to a Lua value: maps become
// tables with string keys, slices tables indexed from 1, numbers Lua numbers.
func toLua(l *lua.LState, v any) (lua.LValue, error) {
	switch v := v.(type) {
	case nil:
		return lua.LNil, nil
	case string:
		return lua.LString(v), nil
	case bool:
		return lua.LBool(v), nil
	case float64:
		return lua.LNumber(v), nil
	case int64:
		return lua.LNumber(v), nil
	case int:
		return lua.LNumber(v), nil
	case map[string]any:
		t := l.NewTable()
		for k, e := range v {
			lv, err := toLua(l, e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			t.RawSetString(k, lv)
		}
		return t, nil
	case []any:
		t := l.NewTable()
		for i, e := range v {
			lv, err := toLua(l, e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			t.Append(lv)
		}
		return t, nil
	default:
		return nil, fmt.Errorf("cannot convert a %T to Lua", v)
	}
}
