"""Audit logger: every business event into an Elasticsearch data stream, once."""
