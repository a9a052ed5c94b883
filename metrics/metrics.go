// Package metrics holds Hushflow's Prometheus metrics: one registry per
// server, the collectors the services report to, and the queue collector
// that reads the run queue when Prometheus scrapes.
//
// No label carries a value a person typed or a secret: labels are run
// statuses, block types, route templates ("/api/v1/runs/:id", never the
// id), HTTP methods and status codes, and resolution results. See
// docs/metrics.md.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every Hushflow metric.
const Namespace = "hushflow"

// QueueStats is the state of the run queue: the number of runs due and
// how long the oldest of them has been due (zero when the queue is empty).
// The reader measures the age with the queue's own clock, the one that
// stamped the runs.
type QueueStats struct {
	Depth     int
	OldestAge time.Duration
}

// QueueFunc reads the run queue; it is called once per scrape and should
// cost one query.
type QueueFunc func(ctx context.Context) (QueueStats, error)

// Metrics is a registry and the collectors Hushflow reports to. Its
// methods are safe for concurrent use; a nil *Metrics records nothing.
type Metrics struct {
	// Registry holds every collector below plus the Go runtime and
	// process collectors.
	Registry *prometheus.Registry

	runs          *prometheus.CounterVec
	runDuration   *prometheus.HistogramVec
	blockDuration *prometheus.HistogramVec
	resolutions   *prometheus.CounterVec
	redactions    prometheus.Counter
	httpDuration  *prometheus.HistogramVec
	resumes       *prometheus.CounterVec
	exposures     *prometheus.CounterVec
	starts        *prometheus.CounterVec
	pruned        prometheus.Counter
}

// Run statuses and resolution results used as label values.
const (
	ResultOK      = "ok"      // the secret resolved
	ResultUnknown = "unknown" // no such name in the run's scope
	ResultError   = "error"   // anything else (decrypt failure, database)
)

// New registers Hushflow's collectors on a new registry. queue, when not
// nil, backs hushflow_queue_depth and hushflow_queue_oldest_age_seconds.
func New(queue QueueFunc) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "runs_total",
			Help: "Runs finished by this process, by final status (succeeded, failed, canceled).",
		}, []string{"status"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "run_duration_seconds",
			Help:    "Time from a run's start (claim) to its end, by final status.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
		}, []string{"status"}),
		blockDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "block_duration_seconds",
			Help:    "Time a block took, retries included, by block type and outcome (succeeded, failed).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"type", "status"}),
		resolutions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "secret_resolutions_total",
			Help: "Secret reads by runs and triggers, by result (ok, unknown, error).",
		}, []string{"result"}),
		redactions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "redactions_total",
			Help: "Masks applied to stored run events and run outputs.",
		}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "http_request_duration_seconds",
			Help:    "API request latency by method, route template and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route", "status"}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "run_resumes_total",
			Help: "Runs resumed by this process after an interruption, by cause (shutdown: released by a stopping replica; lease: its worker stopped renewing its lease; other).",
		}, []string{"cause"}),
		exposures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "secret_exposures_total",
			Help: "Secret values runs found where they should never be (exposure alerts recorded), by sink (output, http_response, exec_output, run_input, webhook_payload).",
		}, []string{"sink"}),
		starts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "run_starts_total",
			Help: "Runs this process started, by how (dispatched: queued through this process while it had a free slot, started at once; claimed: taken from the queue by the claim loop, resumed runs included).",
		}, []string{"how"}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "runs_pruned_total",
			Help: "Runs this process deleted, with their events, because they ended longer ago than the run retention (HUSHFLOW_RUN_RETENTION).",
		}),
	}
	reg.MustRegister(m.runs, m.runDuration, m.blockDuration, m.resolutions, m.redactions, m.httpDuration, m.resumes, m.exposures, m.starts, m.pruned,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if queue != nil {
		reg.MustRegister(&queueCollector{read: queue})
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// RunFinished records a run that ended with status after d.
func (m *Metrics) RunFinished(status string, d time.Duration) {
	if m == nil {
		return
	}
	// The duration first: a scrape that starts after one saw the run
	// counted sees its duration too. (A single scrape gathers the
	// metrics in parallel and is no snapshot.)
	m.runDuration.WithLabelValues(status).Observe(d.Seconds())
	m.runs.WithLabelValues(status).Inc()
}

// BlockFinished records a block of type typ that ended with status after d.
func (m *Metrics) BlockFinished(typ, status string, d time.Duration) {
	if m == nil {
		return
	}
	m.blockDuration.WithLabelValues(typ, status).Observe(d.Seconds())
}

// SecretResolved records one secret read with its result (ResultOK,
// ResultUnknown or ResultError).
func (m *Metrics) SecretResolved(result string) {
	if m == nil {
		return
	}
	m.resolutions.WithLabelValues(result).Inc()
}

// RunResumed records a run resumed after an interruption (cause shutdown,
// lease or other).
func (m *Metrics) RunResumed(cause string) {
	if m == nil {
		return
	}
	m.resumes.WithLabelValues(cause).Inc()
}

// RunsPruned records n runs deleted past the run retention.
func (m *Metrics) RunsPruned(n int) {
	if m == nil {
		return
	}
	m.pruned.Add(float64(n))
}

// RunStarted records a run this process started; how is dispatched or
// claimed.
func (m *Metrics) RunStarted(how string) {
	if m == nil {
		return
	}
	m.starts.WithLabelValues(how).Inc()
}

// SecretExposed records one exposure alert in sink (one of the fixed
// sink names: never a secret's or a project's name).
func (m *Metrics) SecretExposed(sink string) {
	if m == nil {
		return
	}
	m.exposures.WithLabelValues(sink).Inc()
}

// Redacted records n masks applied.
func (m *Metrics) Redacted(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.redactions.Add(float64(n))
}

// HTTPRequest records one API request. route must be a route template
// (echo's c.Path()), never the raw path: ids and names stay out of labels.
func (m *Metrics) HTTPRequest(method, route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.httpDuration.WithLabelValues(method, route, strconv.Itoa(status)).Observe(d.Seconds())
}

// queueCollector reads the queue at scrape time.
type queueCollector struct{ read QueueFunc }

var (
	queueDepthDesc = prometheus.NewDesc(Namespace+"_queue_depth",
		"Runs waiting in the queue (shared by every replica on the database).", nil, nil)
	queueAgeDesc = prometheus.NewDesc(Namespace+"_queue_oldest_age_seconds",
		"How long the oldest queued run has waited (0 when the queue is empty).", nil, nil)
)

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- queueAgeDesc
}

func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := q.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueDepthDesc, err)
		return
	}
	age := 0.0
	if st.Depth > 0 {
		age = max(st.OldestAge.Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(st.Depth))
	ch <- prometheus.MustNewConstMetric(queueAgeDesc, prometheus.GaugeValue, age)
}

// WatchQueue registers the queue collector (hushflow_queue_depth and
// hushflow_queue_oldest_age_seconds) over read, for a registry made with
// New(nil). Call it once.
func (m *Metrics) WatchQueue(read QueueFunc) {
	m.Registry.MustRegister(&queueCollector{read: read})
}
