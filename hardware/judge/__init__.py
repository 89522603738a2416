"""Judging a run: the verification stage (equivalence), spike and voltage traces, and NeuroBench-style
metrics."""
