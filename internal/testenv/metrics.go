package testenv

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// SeriesSum adds up the values of the counter and gauge series of metric name that g gathers and whose labels
// include the given ones; ok is false when g has no such series.
func SeriesSum(g prometheus.Gatherer, name string, labels map[string]string) (sum float64, ok bool) {
	families, _ := g.Gather()
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			ok = true
		}
	}
	return sum, ok
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
			return l.GetName() == k && l.GetValue() == v
		}) {
			return false
		}
	}
	return true
}
