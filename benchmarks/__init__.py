"""Speed and scale measurements of the provider, side by side with the alternatives.

Run them with ``make bench`` or ``python -m benchmarks.run``; see ``benchmarks/README.md``.
"""
