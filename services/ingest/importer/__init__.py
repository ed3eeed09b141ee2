"""Offline touches from files: trade-show visitor lists, event attendance, call and meeting
logs exported from a CRM (CSV or XLSX), sent through the same ingest API as the platforms.

`python -m services.ingest.importer FILE [--default-kind ...] [--dry-run]`: rows.py reads and
maps (pure), __main__.py sends with a progress bar and reports per row.
"""
