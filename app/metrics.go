package app

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the app's Prometheus collectors; the node registers them.
type Metrics struct {
	delivered     *prometheus.CounterVec
	checkRejected *prometheus.CounterVec
	height        prometheus.Gauge
}

func newMetrics() *Metrics {
	return &Metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "medchain", Name: "txs_delivered_total", Help: "Transactions executed in blocks, by type and result code.",
		}, []string{"type", "code"}),
		checkRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "medchain", Name: "txs_check_rejected_total", Help: "Transactions refused by CheckTx, by result code.",
		}, []string{"code"}),
		height: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "medchain", Name: "app_height", Help: "Last committed height of the app state.",
		}),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.delivered, m.checkRejected, m.height}
}
