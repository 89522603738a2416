"""Dataset distillation (PACE, arXiv 2511.12095, as read in ../shared/ALGORITHMS.md). Work in progress: the
quantiser and the matching losses are here and tested; the distillation loop, baselines and CLI are not yet."""
