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

// ingressCollectors export the ingress signature batches' counters.
func ingressCollectors(b *sigBatcher) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "medchain", Name: "ingress_signature_batches_total",
			Help: "Batches of signature checks run for submitted transactions (signatures / batches is the mean batch size).",
		}, func() float64 { return float64(b.batches.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "medchain", Name: "ingress_signatures_total",
			Help: "Signatures of submitted transactions checked in ingress batches.",
		}, func() float64 { return float64(b.sigs.Load()) }),
	}
}
