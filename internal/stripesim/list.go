package stripesim

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// listable is what list and search need of an object.
type listable interface {
	base() *meta
}

func (m *meta) base() *meta { return m }

// listParams are the common list parameters, plus the allowed per-kind filters.
func (c *call) listParams(filters ...string) {
	allowed := append([]string{"limit", "starting_after", "ending_before", "created"}, filters...)
	c.f.unknown(c.form, allowed...)
	c.f.unknownIn(c.form.get("created"), "created", "gt", "gte", "lt", "lte")
}

// list renders Stripe's list object over objs (already filtered by kind-specific filters): newest first, with the
// created range, limit and cursor parameters applied.
func list[T listable](c *call, url string, objs []T, render func(T) obj) any {
	created := c.form.get("created")
	var bounds [4]*int64 // gt, gte, lt, lte
	if created != nil && created.value != nil {
		if n, ok := c.f.integer(c.form, "created"); ok {
			bounds[1], bounds[3] = &n, &n
		}
	}
	for i, op := range []string{"gt", "gte", "lt", "lte"} {
		if n, ok := c.f.integer(created, op); ok {
			bounds[i] = &n
		}
	}
	filtered := objs[:0:0]
	for _, o := range objs {
		t := o.base().Created
		if (bounds[0] != nil && t <= *bounds[0]) || (bounds[1] != nil && t < *bounds[1]) ||
			(bounds[2] != nil && t >= *bounds[2]) || (bounds[3] != nil && t > *bounds[3]) {
			continue
		}
		filtered = append(filtered, o)
	}
	slices.SortFunc(filtered, func(a, b T) int {
		return cmp.Or(cmp.Compare(b.base().Created, a.base().Created), cmp.Compare(b.base().Seq, a.base().Seq))
	})

	limit := int64(10)
	if n, ok := c.f.integer(c.form, "limit"); ok {
		if n < 1 || n > 100 {
			c.f.fail("limit", "Invalid integer: %d. Limit must be between 1 and 100.", n)
		}
		limit = n
	}
	after, hasAfter := c.f.str(c.form, "starting_after")
	before, hasBefore := c.f.str(c.form, "ending_before")
	start, end := 0, len(filtered)
	cursor := func(id string) int {
		return slices.IndexFunc(filtered, func(o T) bool { return o.base().ID == id })
	}
	switch {
	case hasAfter && hasBefore:
		c.f.fail("starting_after", "You may only specify one of these parameters: starting_after, ending_before.")
	case hasAfter:
		i := cursor(after)
		if i < 0 {
			c.f.fail("starting_after", "No such object: '%s'", after)
		}
		start = i + 1
	case hasBefore:
		i := cursor(before)
		if i < 0 {
			c.f.fail("ending_before", "No such object: '%s'", before)
		}
		end = max(i, 0)
		start = max(end-int(limit), 0)
	}
	if c.f.err != nil {
		return nil
	}
	page := filtered[start:end]
	hasMore := false
	if int64(len(page)) > limit {
		page, hasMore = page[:limit], true
	}
	if hasBefore {
		hasMore = start > 0
	}
	data := make([]any, 0, len(page))
	for _, o := range page {
		data = append(data, render(o))
	}
	return obj{"object": "list", "data": data, "has_more": hasMore, "url": url}
}

// Search queries: clauses joined by AND, each field:'value' (exact), field~'value' (substring), or
// metadata['key']:'value', optionally negated with a leading -. Numeric fields take field>n, >=, <, <=.
var clauseRE = regexp.MustCompile(`^(-?)(metadata\[['"]([^'"]+)['"]\]|[a-z_]+)\s*(:|~|>=|<=|>|<)\s*` +
	`(?:'([^']*)'|"([^"]*)"|(-?[0-9]+))$`)

type clause struct {
	negate   bool
	field    string // "metadata.<key>" for metadata
	op       string
	value    string
	numValue int64
}

func parseQuery(q string, fields []string) ([]clause, string) {
	if strings.TrimSpace(q) == "" {
		return nil, "Missing required param: query."
	}
	if strings.Contains(q, " OR ") && strings.Contains(q, " AND ") {
		return nil, "Search queries cannot mix AND and OR."
	}
	var out []clause
	for _, part := range strings.Split(q, " AND ") {
		m := clauseRE.FindStringSubmatch(strings.TrimSpace(part))
		if m == nil {
			return nil, "Invalid query: could not parse the clause '" + strings.TrimSpace(part) + "'."
		}
		cl := clause{negate: m[1] == "-", field: m[2], op: m[4], value: m[5] + m[6] + m[7]}
		if m[3] != "" {
			cl.field = "metadata." + m[3]
		} else if !slices.Contains(fields, cl.field) {
			return nil, "Field '" + cl.field + "' is an unsupported search field. Supported fields: " +
				strings.Join(fields, ", ") + ", metadata."
		}
		if cl.op != ":" && cl.op != "~" {
			n, err := strconv.ParseInt(cl.value, 10, 64)
			if err != nil {
				return nil, "Invalid query: '" + cl.field + "' needs a number."
			}
			cl.numValue = n
		}
		out = append(out, cl)
	}
	return out, ""
}

// matches reports whether an object with these searchable values satisfies every clause.
func matchesQuery(clauses []clause, values map[string]string, md map[string]string) bool {
	for _, cl := range clauses {
		var v string
		var present bool
		if key, ok := strings.CutPrefix(cl.field, "metadata."); ok {
			v, present = md[key]
		} else {
			v, present = values[cl.field]
		}
		var ok bool
		switch cl.op {
		case ":":
			ok = present && v == cl.value
		case "~":
			ok = present && strings.Contains(v, cl.value)
		default:
			n, err := strconv.ParseInt(v, 10, 64)
			ok = err == nil && ((cl.op == ">" && n > cl.numValue) || (cl.op == ">=" && n >= cl.numValue) ||
				(cl.op == "<" && n < cl.numValue) || (cl.op == "<=" && n <= cl.numValue))
		}
		if ok == cl.negate {
			return false
		}
	}
	return true
}

// search renders Stripe's search_result over objs that satisfy the query.
func search[T listable](c *call, url string, objs []T, fields []string, values func(T) map[string]string,
	render func(T) obj) any {
	c.f.unknown(c.form, "query", "limit", "page")
	q, _ := c.f.str(c.form, "query")
	clauses, msg := parseQuery(q, fields)
	if msg != "" {
		c.f.fail("query", "%s", msg)
		return nil
	}
	limit := int64(10)
	if n, ok := c.f.integer(c.form, "limit"); ok {
		if n < 1 || n > 100 {
			c.f.fail("limit", "Invalid integer: %d. Limit must be between 1 and 100.", n)
		}
		limit = n
	}
	offset := int64(0)
	if p, ok := c.f.str(c.form, "page"); ok && p != "" {
		n, err := strconv.ParseInt(strings.TrimPrefix(p, "page_"), 10, 64)
		if err != nil || n < 0 {
			c.f.fail("page", "Invalid page: %s", p)
		}
		offset = n
	}
	if c.f.err != nil {
		return nil
	}
	var hits []T
	for _, o := range objs {
		if matchesQuery(clauses, values(o), o.base().Metadata) {
			hits = append(hits, o)
		}
	}
	slices.SortFunc(hits, func(a, b T) int {
		return cmp.Or(cmp.Compare(b.base().Created, a.base().Created), cmp.Compare(b.base().Seq, a.base().Seq))
	})
	total := int64(len(hits))
	hits = hits[min(offset, total):]
	hasMore := int64(len(hits)) > limit
	if hasMore {
		hits = hits[:limit]
	}
	data := make([]any, 0, len(hits))
	for _, o := range hits {
		data = append(data, render(o))
	}
	var next any
	if hasMore {
		next = "page_" + strconv.FormatInt(offset+limit, 10)
	}
	return obj{"object": "search_result", "data": data, "has_more": hasMore, "next_page": next, "url": url,
		"total_count": total}
}

// values of a map, for list and search.
func values[T any](m map[string]T) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
