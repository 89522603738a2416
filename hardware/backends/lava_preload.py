"""Imported once by the forkserver that Lava verification workers fork from (``hardware/backends/pool.py``): Lava (with
its Python 3.11 fixes) and the process models a network needs, so that a worker starts with them loaded."""
from hardware.backends import lava_compat

lava_compat.install()

import lava.magma.core.run_configs  # noqa: E402,F401
import lava.proc.conv.models  # noqa: E402,F401
import lava.proc.dense.models  # noqa: E402,F401
import lava.proc.io.source  # noqa: E402,F401
import lava.proc.lif.models  # noqa: E402,F401
import lava.proc.monitor.models  # noqa: E402,F401

import hardware.backends.lava_procs.recorder  # noqa: E402,F401
