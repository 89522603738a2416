"""Run native work in a forked child and take back its bytes: for decoders that abort their process on bad input
(the AEDAT 4 decoder) and libraries that carry state from one call to the next (eSpeak NG). The child starts from
this process's state as it is at the fork, sends its result down a pipe and exits without clean-up."""
from __future__ import annotations

import faulthandler
import os
from typing import Callable


class ChildFailed(Exception):
    """The child died or exited without a result; ``how`` says how (a signal or an exit status)."""

    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how


def run(work: Callable[[], bytes], expected: type[Exception]) -> bytes:
    """``work()`` in a forked child: its bytes; an ``expected`` exception it raised is raised here with the same
    message; anything else (a crash, an abort, another exception) is :class:`ChildFailed`."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                    # the child: work, send the result, never return
        code = 0
        try:
            faulthandler.disable()
            os.close(r)
            with os.fdopen(w, "wb") as out:
                try:
                    out.write(b"O" + work())
                except expected as e:
                    out.write(b"E" + str(e).encode())
        except BaseException:                       # noqa: B036  (nothing may escape a forked child)
            code = 1
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as inp:
        data = inp.read()
    _, status = os.waitpid(pid, 0)
    if data[:1] == b"E" and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        raise expected(data[1:].decode(errors="replace"))
    if data[:1] != b"O" or not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        raise ChildFailed(f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                          else f"status {os.WEXITSTATUS(status)}")
    return data[1:]
