"""Ingest: the HTTP API that marketing platforms call in their own formats."""
