package operator

import (
	"slices"
	"strings"
	"testing"
)

// A small PromQL scanner that finds the metric names an expression selects, so the alert test can check them
// against a real scrape without depending on Prometheus itself. It skips string literals, label matchers inside
// {...} (but reads a {__name__="..."} selector), range and subquery durations inside [...], numbers and durations,
// the label lists of by/without/on/ignoring/group_left/group_right, the keywords, and every identifier followed by
// "(" (functions and aggregations).

// promKeywords are identifiers that are never metric names.
var promKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "atan2": true, "inf": true, "nan": true,
	// Aggregation operators, which may be followed by by/without instead of "(".
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true,
	"limit_ratio": true,
}

// labelListKeywords are followed by a parenthesised list of label names.
var labelListKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipString returns the index after the string literal starting at s[i] (a quote character).
func skipString(s string, i int) int {
	q := s[i]
	for i++; i < len(s); i++ {
		switch {
		case s[i] == '\\' && q != '`':
			i++
		case s[i] == q:
			return i + 1
		}
	}
	return i
}

// skipSpace returns the index of the first non-space character at or after i.
func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

// skipBalanced returns the index after the group opened by s[i] (one of "([{"), skipping strings inside.
func skipBalanced(s string, i int) int {
	open := s[i]
	closing := map[byte]byte{'(': ')', '[': ']', '{': '}'}[open]
	depth := 0
	for i < len(s) {
		switch s[i] {
		case '"', '\'', '`':
			i = skipString(s, i)
			continue
		case open:
			depth++
		case closing:
			depth--
			if depth == 0 {
				return i + 1
			}
		}
		i++
	}
	return i
}

// nameMatcher reads a __name__="value" equality matcher out of the inside of {...}.
func nameMatcher(inside string) string {
	rest, ok := strings.CutPrefix(strings.TrimSpace(inside), "__name__")
	if !ok {
		_, after, found := strings.Cut(inside, ",")
		if !found {
			return ""
		}
		return nameMatcher(after)
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasPrefix(rest, "=") || strings.HasPrefix(rest, "=~") {
		return ""
	}
	rest = strings.TrimSpace(rest[1:])
	if rest == "" || (rest[0] != '"' && rest[0] != '\'' && rest[0] != '`') {
		return ""
	}
	end := skipString(rest, 0)
	return strings.ReplaceAll(rest[1:end-1], `\"`, `"`)
}

// skipNumber returns the index after a number (1, 0.05, 1e3, 0x1F) or a duration (5m, 1h30m) starting at i.
func skipNumber(s string, i int) int {
	for i < len(s) && (isIdentChar(s[i]) || s[i] == '.') {
		i++
	}
	return i
}

// scanIdent reads the identifier starting at i and what follows it when that belongs to it (the label list of by,
// without, on, ignoring, group_left, group_right; the duration of offset). It returns the index after them and the
// identifier if it is a metric name, else "".
func scanIdent(s string, i int) (int, string) {
	start := i
	for i < len(s) && isIdentChar(s[i]) {
		i++
	}
	word := s[start:i]
	next := skipSpace(s, i)
	lower := strings.ToLower(word)
	switch {
	case labelListKeywords[lower]:
		if next < len(s) && s[next] == '(' {
			return skipBalanced(s, next), ""
		}
	case lower == "offset":
		if next < len(s) && s[next] == '-' {
			next++
		}
		return skipNumber(s, next), ""
	case promKeywords[lower], next < len(s) && s[next] == '(': // a keyword, or a function call
	default:
		return i, word
	}
	return i, ""
}

// metricNames returns the metric names expr selects, sorted and without duplicates.
func metricNames(expr string) []string {
	var out []string
	s := expr
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '#': // a comment runs to the end of the line
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			i = skipString(s, i)
		case c == '{':
			end := skipBalanced(s, i)
			if name := nameMatcher(s[i+1 : max(i+1, end-1)]); name != "" {
				out = append(out, name)
			}
			i = end
		case c == '[':
			i = skipBalanced(s, i)
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			i = skipNumber(s, i)
		case isIdentStart(c):
			var name string
			if i, name = scanIdent(s, i); name != "" {
				out = append(out, name)
			}
		default: // spaces, operators, parentheses, commas
			i++
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestMetricNames(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`sum(rate(a_total{outcome="unavailable", x=~"y|z"}[5m])) / sum(rate(a_total[5m])) > 0.05`,
			[]string{"a_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(h_seconds_bucket[10m]))) > 5`, []string{"h_seconds_bucket"}},
		{`sum without (instance, pod) (x) and on(job) group_left(team) y_info unless z offset 1h`,
			[]string{"x", "y_info", "z"}},
		{`max by (kind) (g) > bool 900 or vector(0)`, []string{"g"}},
		{`h_sum / ignoring(le) h_count`, []string{"h_count", "h_sum"}},
		{`{__name__="by_name", job="j"} + on() {job="k", __name__ = 'other'}`, []string{"by_name", "other"}},
		{`avg_over_time(m[1h:5m]) * 1e3 - .5 + 0x1F`, []string{"m"}},
		{`label_replace(a, "dst", "$1", "src", "(.*)") # sum(b)`, []string{"a"}},
		{`sum by (reason) (increase(f{reason=~"a|b"}[10m] offset -5m)) > Inf`, []string{"f"}},
		{`count(topk(3, c)) @ end()`, []string{"c"}},
		{"metric_with:colon{a=\"}\"}", []string{"metric_with:colon"}},
	}
	for _, c := range cases {
		if got := metricNames(c.expr); !slices.Equal(got, c.want) {
			t.Errorf("metricNames(%q) = %q, want %q", c.expr, got, c.want)
		}
	}
}
