"""Settings the dense-model benchmarks pin: their results (benchmarks/results/pruning*, distillation*, training*)
were measured on the dense model at these values, before the defaults moved to the conv model."""
DENSE = ["model.arch=dense", "model.du=1024", "model.dv=256", "data.n_bins=16", "train.epochs=30"]
