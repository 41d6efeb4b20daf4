"""Prometheus metrics of one app (own registry, so several apps can live in one test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram("codelstm_request_seconds", "End-to-end completion latency", ["mode"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("codelstm_batch_size", "Requests advanced together per worker round",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.queue_depth = Gauge("codelstm_queue_depth", "Requests waiting or running", registry=r)
        self.requests = Counter("codelstm_requests_total", "Completion requests by outcome (ok, timeout, overloaded, "
                                "cancelled, superseded, shutting_down, failed)", ["outcome"], registry=r)
        self.worker_restarts = Gauge("codelstm_worker_restarts", "Times the batching worker died and was restarted",
                                     registry=r)
        self.fed_chars = Counter("codelstm_fed_chars_total", "Prefix bytes the model had to read", registry=r)
        self.cached_chars = Counter("codelstm_cached_chars_total", "Prefix bytes skipped thanks to the cache",
                                    registry=r)
        self.generated_chars = Counter("codelstm_generated_chars_total", "Completion bytes returned", registry=r)
        self.cache_hit_ratio = Gauge("codelstm_cache_hit_ratio", "Share of cache lookups that resumed a state",
                                     registry=r)
        self.cache_bytes = Gauge("codelstm_cache_bytes", "Memory held by the state cache", registry=r)
