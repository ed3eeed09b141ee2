"""Offline conversions back to Yandex Metrica for the members of a buying group (see worker.py)."""
