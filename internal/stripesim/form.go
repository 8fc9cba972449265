package stripesim

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// param is one node of a decoded Stripe form: a scalar value, or children keyed by name or array index.
// Stripe's form encoding nests with brackets: metadata[k]=v, items[0][price]=p, expand[0]=customer (stripe-go
// indexes arrays; expand[]=customer is accepted too).
type param struct {
	value    *string
	children map[string]*param
	order    []string // children keys in first-seen order
}

// parseForm decodes url.Values into a tree. It fails on a malformed key such as "a[b".
func parseForm(values url.Values) (*param, error) {
	root := &param{}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	// Sorted so that array indexes and the order of children are deterministic.
	slices.SortFunc(keys, compareFormKeys)
	for _, k := range keys {
		parts, err := splitFormKey(k)
		if err != nil {
			return nil, err
		}
		for _, v := range values[k] {
			node := root
			for i, p := range parts {
				if p == "" { // expand[]=a&expand[]=b: each value gets the next index
					p = strconv.Itoa(len(node.order))
				}
				node = node.child(p)
				if i == len(parts)-1 {
					val := v
					node.value = &val
				}
			}
		}
	}
	return root, nil
}

// compareFormKeys orders keys so that items[2] sorts before items[10].
func compareFormKeys(a, b string) int {
	pa, errA := splitFormKey(a)
	pb, errB := splitFormKey(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, errA := strconv.Atoi(pa[i])
		nb, errB := strconv.Atoi(pb[i])
		if errA == nil && errB == nil {
			return na - nb
		}
		return strings.Compare(pa[i], pb[i])
	}
	return len(pa) - len(pb)
}

func splitFormKey(k string) ([]string, error) {
	open := strings.IndexByte(k, '[')
	if open < 0 {
		return []string{k}, nil
	}
	parts := []string{k[:open]}
	rest := k[open:]
	for rest != "" {
		if rest[0] != '[' {
			return nil, fmt.Errorf("malformed parameter name %q", k)
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return nil, fmt.Errorf("malformed parameter name %q", k)
		}
		parts = append(parts, rest[1:end])
		rest = rest[end+1:]
	}
	return parts, nil
}

func (p *param) child(name string) *param {
	if p.children == nil {
		p.children = map[string]*param{}
	}
	c, ok := p.children[name]
	if !ok {
		c = &param{}
		p.children[name] = c
		p.order = append(p.order, name)
	}
	return c
}

// get returns the named child, or nil.
func (p *param) get(name string) *param {
	if p == nil {
		return nil
	}
	return p.children[name]
}

// list returns the children of an array parameter in index order.
func (p *param) list() []*param {
	if p == nil {
		return nil
	}
	out := make([]*param, 0, len(p.order))
	for _, k := range p.order {
		out = append(out, p.children[k])
	}
	return out
}

// formReader reads typed values out of a param tree and remembers the first error, named by parameter path, in
// Stripe's words.
type formReader struct {
	err *apiError
}

func (f *formReader) fail(name, format string, args ...any) {
	if f.err == nil {
		f.err = invalidParam(name, fmt.Sprintf(format, args...))
	}
}

// str returns the value of a scalar parameter; ok is false when it was not sent.
func (f *formReader) str(p *param, name string) (string, bool) {
	n := p.get(name)
	if n == nil {
		return "", false
	}
	if n.value == nil {
		f.fail(name, "Invalid string: {...}")
		return "", false
	}
	return *n.value, true
}

// optStr returns a pointer to the value: nil when not sent; a pointer to "" when sent empty (which unsets).
func (f *formReader) optStr(p *param, name string) *string {
	v, ok := f.str(p, name)
	if !ok {
		return nil
	}
	return &v
}

func (f *formReader) integer(p *param, name string) (int64, bool) {
	v, ok := f.str(p, name)
	if !ok || v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		f.fail(name, "Invalid integer: %s", v)
		return 0, false
	}
	return n, true
}

func (f *formReader) boolean(p *param, name string) (bool, bool) {
	v, ok := f.str(p, name)
	if !ok {
		return false, false
	}
	switch v {
	case "true":
		return true, true
	case "false", "":
		return false, true
	}
	f.fail(name, "Invalid boolean: %s", v)
	return false, false
}

// enum reads a string that must be one of allowed.
func (f *formReader) enum(p *param, name string, allowed ...string) (string, bool) {
	v, ok := f.str(p, name)
	if !ok {
		return "", false
	}
	if !slices.Contains(allowed, v) {
		f.fail(name, "Invalid %s: must be one of %s", name, strings.Join(allowed, ", "))
		return "", false
	}
	return v, true
}

// metadata applies metadata[k]=v changes to m (an empty value removes the key), then checks Stripe's limits.
// metadata="" clears every key.
func (f *formReader) metadata(p *param, m map[string]string) map[string]string {
	n := p.get("metadata")
	if n == nil {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	if n.value != nil {
		if *n.value == "" {
			return map[string]string{}
		}
		f.fail("metadata", "Invalid metadata: metadata must be a hash of key-value pairs")
		return m
	}
	for _, k := range n.order {
		c := n.children[k]
		if c.value == nil {
			f.fail("metadata["+k+"]", "Invalid metadata value: nested objects are not supported")
			return m
		}
		switch {
		case len(k) > 40:
			f.fail("metadata", "Metadata keys can have up to 40 characters, but key %q has %d", k, len(k))
		case strings.ContainsAny(k, "[]"):
			f.fail("metadata", "Metadata keys cannot contain '[' or ']': %q", k)
		case len(*c.value) > 500:
			f.fail("metadata", "Metadata values can have up to 500 characters, but the value for %q has %d",
				k, len(*c.value))
		}
		if *c.value == "" {
			delete(out, k)
		} else {
			out[k] = *c.value
		}
	}
	if len(out) > 50 {
		f.fail("metadata", "Metadata can have up to 50 keys, but %d were given", len(out))
	}
	return out
}

// expand returns the expand[] paths.
func (f *formReader) expand(p *param) map[string]bool {
	out := map[string]bool{}
	for _, c := range p.get("expand").list() {
		if c.value != nil {
			out[*c.value] = true
		}
	}
	return out
}

// unknown fails on the first top-level parameter not in allowed; expand is always allowed.
func (f *formReader) unknown(p *param, allowed ...string) {
	for _, k := range p.order {
		if k != "expand" && !slices.Contains(allowed, k) {
			f.fail(k, "Received unknown parameter: %s", k)
			return
		}
	}
}

// unknownIn fails on the first parameter of a nested hash (prefix[key]) not in allowed.
func (f *formReader) unknownIn(p *param, prefix string, allowed ...string) {
	if p == nil {
		return
	}
	for _, k := range p.order {
		if !slices.Contains(allowed, k) {
			f.fail(prefix+"["+k+"]", "Received unknown parameter: %s[%s]", prefix, k)
			return
		}
	}
}
