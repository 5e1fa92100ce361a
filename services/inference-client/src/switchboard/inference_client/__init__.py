"""Inference client: runs InferenceRequests on Triton and streams the answers back to Kafka."""
