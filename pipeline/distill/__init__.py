"""Dataset distillation: PACE (arXiv 2511.12095, as read in ../shared/ALGORITHMS.md) and its baselines.

``matching`` (SDR features, characteristic-function and temporal amplitude/phase distances), ``peq`` (PEQ-N),
``pace`` (probe networks, teachers and the optimisation loop of the continuous relaxation, also for the CF
and DM baselines), ``coreset`` (random, herding,
k-center), ``store`` (writing the distilled folder: uint8 frames and N-MNIST event files). The command is
``pipeline/commands/distill.py``; a run reads a distilled set through ``pipeline/data/distilled.py``.
"""
