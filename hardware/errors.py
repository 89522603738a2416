"""The errors of ``hardware/``: a graph we cannot run (bad input: one line, exit 2), a Lava run that failed."""


class GraphError(ValueError):
    """A NIR graph this backend cannot run, naming the node and the reason."""


class LavaError(RuntimeError):
    """Lava failed or timed out on a chunk of samples."""
