"""The four services: ingest, grouping, scoring, projection, each its own process."""
