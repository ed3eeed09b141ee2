"""Alerts to sales: signals from bg.signal.v1 delivered to webhooks (python -m services.scoring.alerts)."""
