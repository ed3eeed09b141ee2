"""Projection: opportunity events, scores, signals and CRM stage changes materialised into
PostgreSQL, and the read API that CRMs and people use."""
