"""Benchmarks of lro-server: serving against the machine's ceiling, WaitOperation fan-in,
the write path, and the store. Run them all with ``python -m benchmarks`` (``--quick`` for a
smoke run); each prints a table and writes JSON to ``benchmarks/results/``.
"""
