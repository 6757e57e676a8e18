"""What a replica tells its operator: logs, the access log, Prometheus metrics."""
