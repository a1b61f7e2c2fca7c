package node

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the node's Prometheus metrics. Labels carry only fixed
// vocabularies (endpoint, outcome, media kind), never anything from a
// request.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec   // gateway requests by kind and outcome
	latency   *prometheus.HistogramVec // time to the first byte of the answer, by kind
	streams   prometheus.Gauge         // requests being served
	chunks    prometheus.Counter       // sealed response chunks
	rotations *prometheus.CounterVec   // epoch rotations by outcome
	bundles   *prometheus.CounterVec   // bundles served, passport or challenge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sworn_node_requests_total",
			Help: "Gateway requests by media kind (ohttp, chunked, multi) and outcome."}, []string{"kind", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sworn_node_first_byte_seconds",
			Help: "Time from a decrypted request to the first sealed byte of its answer.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"kind"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sworn_node_active_streams", Help: "Requests being served."}),
		chunks:  prometheus.NewCounter(prometheus.CounterOpts{Name: "sworn_node_response_chunks_total", Help: "Sealed response chunks sent."}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sworn_node_epoch_rotations_total",
			Help: "Epoch rotations (new keys and evidence) by outcome."}, []string{"outcome"}),
		bundles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sworn_node_bundles_total",
			Help: "Evidence bundles served, by mode."}, []string{"mode"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.streams, m.chunks, m.rotations, m.bundles,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
