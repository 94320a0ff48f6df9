"""Named points where a test can SIGKILL the running process, to prove a killed run leaves nothing a rerun
does not repair.

``LIQF_CRASH_AT=<point>#<n>`` kills the process (a real ``SIGKILL``: no cleanup, no ``finally``) the n-th
time it reaches ``<point>`` (``#1`` when omitted). Unset, a point costs one dictionary lookup. Points:

* ``part_written``   a lake file's temporary is complete and fsynced, not yet renamed into place
* ``staging_batch``  a node-fill batch was written to the input's staging directory
* ``input_recorded`` an input's ledger row (its last write) is committed
"""

from __future__ import annotations

import os
import signal

_seen: dict[str, int] = {}


def crash_point(name: str) -> None:
    target = os.environ.get("LIQF_CRASH_AT")
    if not target:
        return
    point, _, nth = target.partition("#")
    if point != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
