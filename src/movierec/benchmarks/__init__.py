"""Serving benchmarks: the ranker's top-N cost as the catalog grows, the bare reference endpoint,
the stack under ``wrk`` load (cache hit and miss paths), and per-process memory.

``movierec bench ranker`` and ``movierec bench serving`` drive them; results go to
``reports/performance.md`` and ``reports/performance.json``.
"""
