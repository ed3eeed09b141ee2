"""Scoring: group-level scores, formation and priority signals, alerts to sales (issue 5)."""
