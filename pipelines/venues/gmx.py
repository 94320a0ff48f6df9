"""GMX v2 contract reads over JSON-RPC (transport only: no lake, no orchestration).

The EventEmitter log stream and its decoding into lake rows are in ``pipelines.ingest.gmx``.
"""

from __future__ import annotations
