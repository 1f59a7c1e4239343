"""The server's Prometheus metrics (`GET /metrics`), one registry per app so that two servers
in one process (the tests) count apart."""

from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from tunelab.serve.rows import Job

disable_created_metrics()  # the *_created series double the output and say little here


@dataclass
class ServerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "tunelab_requests", "HTTP requests answered", ["path", "status"], registry=r
        )
        self.errors = Counter(
            "tunelab_request_errors", "requests answered with a 4xx or 5xx", ["path"], registry=r
        )
        self.latency = Histogram(
            "tunelab_request_seconds", "time to the response's first byte", ["path"], registry=r
        )
        self.generated = Counter("tunelab_generated_tokens", "tokens generated", registry=r)
        self.tokens_per_s = Gauge(
            "tunelab_tokens_per_second", "generated tokens per second, last batch", registry=r
        )
        self.batch_rows = Histogram(
            "tunelab_batch_rows",
            "requests per generate call",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.queue_depth = Gauge("tunelab_queue_depth", "requests waiting", registry=r)
        self.mixed_batches = Counter(
            "tunelab_mixed_adapter_batches", "batches whose rows used several adapters", registry=r
        )

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        self.requests.labels(path, str(status)).inc()
        self.latency.labels(path).observe(seconds)
        if status >= 400:
            self.errors.labels(path).inc()

    def observe_batch(self, jobs: list[Job], seconds: float) -> None:
        tokens = sum(len(job.tokens) for job in jobs)
        self.batch_rows.observe(len(jobs))
        if len({job.adapter for job in jobs}) > 1:
            self.mixed_batches.inc()
        self.generated.inc(tokens)
        self.tokens_per_s.set(tokens / seconds if seconds > 0 else 0.0)

    def value(self, sample: str) -> float:
        """One sample's current value, e.g. 'tunelab_batch_rows_count' (0 before any)."""
        return self.registry.get_sample_value(sample) or 0.0

    def text(self, queue_depth: int) -> bytes:
        self.queue_depth.set(queue_depth)
        return generate_latest(self.registry)
