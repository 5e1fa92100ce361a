"""Kafka consumer-group lag for Prometheus (python -m switchboard.lag_exporter)."""
