"""The scoring domain: pure functions of the opportunity events and the watermark.

No I/O and no wall clock here, so that a replayed log gives byte-identical scores and signals.
"""
