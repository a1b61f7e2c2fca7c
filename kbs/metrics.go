package kbs

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the broker's Prometheus metrics. Labels carry fixed
// vocabularies only, never a model, a node or anything from a request.
type metrics struct {
	reg        *prometheus.Registry
	challenges *prometheus.CounterVec   // challenges by outcome
	releases   *prometheus.CounterVec   // release requests by outcome
	phase      *prometheus.HistogramVec // time spent per phase of a release
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		challenges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sworn_kbs_challenges_total",
			Help: "Challenges by outcome (issued, refused, limited)."}, []string{"outcome"}),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sworn_kbs_releases_total",
			Help: "Key release requests by outcome (released, refused, limited, unavailable, error)."}, []string{"outcome"}),
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sworn_kbs_release_seconds",
			Help:    "Time of a key release by phase: appraisal, log (append and witness wait), total.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"phase"}),
	}
	m.reg.MustRegister(m.challenges, m.releases, m.phase,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// outcome names a refusal for the metrics.
func outcome(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "limited"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusInternalServerError:
		return "error"
	}
	return "refused"
}
