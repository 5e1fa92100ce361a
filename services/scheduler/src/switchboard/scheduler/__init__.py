"""Scheduler: turns parsed intents into work, persists it in PostgreSQL and relays it to Kafka."""
