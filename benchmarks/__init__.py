"""Benchmarks: ``make bench`` (``python -m benchmarks``).

Each benchmark module exposes ``run(report)``; ``report(name, value, unit,
target)`` records one figure. Every figure is the median of several runs, and
comparisons are measured side by side in the same run. Results are printed one
line per figure and written to ``benchmarks/results.json``.
"""
