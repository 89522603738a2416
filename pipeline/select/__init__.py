"""Training-set selection per epoch: full data, SADP spike-aware pruning, and the baselines it must beat."""
