"""SpikeRecorder: a Lava sink that writes each step's input into a memory-mapped file.

Lava's own ``io.sink.RingBuffer`` keeps spikes in a Var, and reading a Var back is slow (element by element:
~15 s for 460k values here), so for long runs we record straight to a file that the caller maps after ``stop``.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class SpikeRecorder(AbstractProcess):
    """Records ``a_in`` (shape (n,)) at every step into ``path``: a uint8 array (n, num_steps)."""

    def __init__(self, *, shape: tuple[int], num_steps: int, path: str) -> None:
        super().__init__(shape=shape, num_steps=num_steps, path=path)
        self.a_in = InPort(shape=shape)


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeRecorderModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._shape = (proc_params["shape"][0], proc_params["num_steps"])
        self._path = proc_params["path"]
        self._buf = None

    def run_spk(self) -> None:
        if self._buf is None:   # opened in the worker process Lava forked for this model
            self._buf = np.memmap(self._path, dtype=np.uint8, mode="r+", shape=self._shape)
        self._buf[:, self.time_step - 1] = self.a_in.recv() != 0
