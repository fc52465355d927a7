"""Command-line entry points of anomalib-cmdr (the ``anomalib-cmdr`` console script)."""
