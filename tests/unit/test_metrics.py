"""The per-call series are counted locally and rendered on scrape in the Prometheus text
format, with the same names and meaning as prometheus_client's own counter and histogram."""

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from proxy.observability import metrics


def _lines(text: bytes, prefix: str) -> list[str]:
    return [line for line in text.decode().splitlines() if line.startswith(prefix)]


def test_local_series_render_like_prometheus_client():
    values = [0.0004, 0.0005, 0.0007, 0.003, 0.2, 400.0]  # on a bound, between bounds, past the last
    reference_registry = CollectorRegistry()
    reference = Histogram("ref_seconds", "", ["endpoint"], buckets=metrics._LATENCY_BUCKETS,
                          registry=reference_registry)
    for value in values:
        metrics.count_request("test-endpoint", "m", 200, value)
        reference.labels("test-endpoint").observe(value)
    ours = generate_latest(metrics.REGISTRY)
    theirs = generate_latest(reference_registry)
    expected = [line.replace("ref_seconds", "billing_proxy_request_duration_seconds")
                for line in _lines(theirs, "ref_seconds_") if "_created" not in line]
    assert _lines(ours, 'billing_proxy_request_duration_seconds_') and all(
        line in _lines(ours, "billing_proxy_request_duration_seconds_") for line in expected)
    assert 'billing_proxy_requests_total{endpoint="test-endpoint",model="m",status="200"} 6.0' in ours.decode()
