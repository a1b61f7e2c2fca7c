package relay

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the relay's Prometheus metrics. Labels carry only fixed
// vocabularies (media kind, outcome, direction, node state): never a node
// id, an address or anything of a request.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec   // forwards by kind and outcome
	firstByte *prometheus.HistogramVec // to the node's response header, by outcome
	duration  *prometheus.HistogramVec // whole forward, by outcome
	bytes     *prometheus.CounterVec   // bytes passed, by direction
	active    prometheus.Gauge
	refreshes *prometheus.CounterVec // directory fetches by outcome
	nodes     *prometheus.GaugeVec   // nodes by state
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sworn_relay_requests_total",
			Help: "Forwarded requests by media kind (ohttp, chunked, multi, unknown) and outcome."}, []string{"kind", "outcome"}),
		firstByte: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sworn_relay_response_header_seconds",
			Help: "Time from a request to its node's response header, by outcome.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18)}, []string{"outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sworn_relay_request_seconds",
			Help: "Time from a request to the end of its answer, by outcome.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 20)}, []string{"outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sworn_relay_bytes_total",
			Help: "Encrypted bytes passed, by direction (to_node, to_client)."}, []string{"direction"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sworn_relay_active_forwards", Help: "Requests being forwarded."}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sworn_relay_directory_fetches_total",
			Help: "Fetches of a node's bundle and keys, by outcome (ok, not_modified, error)."}, []string{"outcome"}),
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sworn_relay_nodes",
			Help: "Nodes by state: serving (listed with a bundle) or failing (listed with an error)."}, []string{"state"}),
	}
	m.reg.MustRegister(m.requests, m.firstByte, m.duration, m.bytes, m.active, m.refreshes, m.nodes,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
