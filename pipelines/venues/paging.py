"""Pagers never advance past data they did not read: a page the venue serves twice is asked for again.

A cache or load balancer can answer a page request with the page served just before (the same body);
a pager that moves its cursor on that answer skips the page it never saw (offset pagers), stops early
(``next start = last time + 1`` pagers) or jumps a millisecond (time pagers). :class:`RepeatGuard`
recognises the repeat so the pager requests the same cursor again, up to ``max_repeats`` times, then
raises :class:`StalePageError` (the pull is incomplete: nothing partial is kept).
"""

from __future__ import annotations

from typing import Any

from pipelines.venues.base import RawResponse, StalePageError


class RepeatGuard:
    """One per walk: ``repeated(page)`` is True when ``page`` is the previous page again."""

    def __init__(self, venue: str, endpoint: str, max_repeats: int = 5) -> None:
        self.venue, self.endpoint, self.max_repeats = venue, endpoint, max_repeats
        self._previous: Any = None
        self._seen_any = False
        self.repeats = 0  # re-requests made in this walk

    def repeated(self, page: RawResponse, cursor: object = None) -> bool:
        """Offset pagers: the same payload as the previous page (an empty page is never a repeat)."""
        if self._seen_any and page.payload == self._previous and page.payload not in ([], {}, None):
            return self.again(cursor)
        self._previous, self._seen_any = page.payload, True
        return False

    def outside(self, times: list[int], *, start: int | None = None, end: int | None = None) -> bool:
        """Time pagers: a page holding items before the ``start`` (or after the ``end``) it was asked
        for is not the page asked for (the previous page again): ask again."""
        if times and ((start is not None and min(times) < start) or (end is not None and max(times) > end)):
            return self.again(start if start is not None else end)
        return False

    def again(self, cursor: object) -> bool:
        self.repeats += 1
        if self.repeats > self.max_repeats:
            raise StalePageError(
                f"the page at cursor {cursor!r} was a stale page {self.repeats} times",
                venue=self.venue,
                endpoint=self.endpoint,
            )
        return True
