"""Scheduled pulls from platforms that do not push: Yandex Metrica's Logs API (visits and
pageviews keyed by ClientID) and MTS Link's UserAPI v3 (webinar attendance). Both write
canonical events through the ingest API (/v1/events), so dedupe and dead letters are ingest's.
"""
