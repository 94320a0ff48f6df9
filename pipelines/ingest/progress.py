"""Progress of a run over files, in bytes of the files as stored (compressed bytes of an lz4 file): per file
and overall, to a listener the CLI renders (:func:`pipelines.ingest.runner.rich_listener`) or a test records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: ``(name, bytes done, bytes total)`` for each file, and under the name :data:`OVERALL` for the whole run
ProgressListener = Callable[[str, int, int], None]
OVERALL = "overall"


class ByteProgress:
    """Bytes done against the files' sizes, per file and overall; a file never counts more than its size (one
    that grew while read still ends at 100%)."""

    def __init__(self, total: int, listener: ProgressListener) -> None:
        self.total, self.done, self.listener = total, 0, listener
        listener(OVERALL, 0, total)

    def start(self, name: str, size: int, *, in_bytes: bool = True) -> FileProgress:
        """A file's ``progress(n)`` callback; one that is not ``in_bytes`` (it counts records) shows no
        progress until :meth:`FileProgress.end`."""
        self.listener(name, 0, size)
        return FileProgress(self, name, size, in_bytes)


@dataclass
class FileProgress:
    run: ByteProgress
    name: str
    size: int
    in_bytes: bool
    done: int = 0

    def __call__(self, n: int) -> None:
        if self.in_bytes:
            self._advance(n)

    def end(self) -> None:
        """The file is done (read, refused or failed): it counts as its whole size."""
        self._advance(self.size - self.done)

    def _advance(self, n: int) -> None:
        n = min(n, self.size - self.done)
        if n > 0:
            self.done += n
            self.run.done += n
            self.run.listener(self.name, self.done, self.size)
            self.run.listener(OVERALL, self.run.done, self.run.total)
