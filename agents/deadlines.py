"""The deadline index: per owned partition, which tickets have something due and when.

A heap per partition with lazy deletion: `schedule` records a ticket's next
due instant (replacing any earlier one), `pop_due` returns the tickets due by
an instant. It lives in memory only and is rebuilt from the clock table when
partitions are assigned, so it never needs a changelog of its own.
"""

from __future__ import annotations

import heapq

__all__ = ["DeadlineIndex"]


class DeadlineIndex:
    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[int, str]]] = {}
        self._due: dict[str, int] = {}  # ticket -> its current due instant

    def __len__(self) -> int:
        return len(self._due)

    def clear(self) -> None:
        self._heaps.clear()
        self._due.clear()

    def schedule(self, partition: int, ticket_id: str, due: int | None) -> None:
        """Set (or with None, remove) the instant at which `ticket_id` next needs a look."""
        if due is None:
            self._due.pop(ticket_id, None)
            return
        if self._due.get(ticket_id) == due:
            return
        self._due[ticket_id] = due
        heapq.heappush(self._heaps.setdefault(partition, []), (due, ticket_id))

    def next_due(self, partition: int) -> int | None:
        heap = self._heaps.get(partition)
        while heap:
            due, ticket_id = heap[0]
            if self._due.get(ticket_id) == due:
                return due
            heapq.heappop(heap)  # superseded by a later schedule
        return None

    def pop_due(self, partition: int, now: int, limit: int = 10_000) -> list[str]:
        """Tickets of `partition` due by `now` (at most `limit`), removed from the index."""
        return [ticket_id for ticket_id, _ in self.take_due(partition, now, limit)]

    def take_due(self, partition: int, now: int, limit: int = 10_000) -> list[tuple[str, int]]:
        """(ticket, due) of `partition` due by `now` (at most `limit`), removed from the index."""
        heap = self._heaps.get(partition)
        taken: list[tuple[str, int]] = []
        while heap and heap[0][0] <= now and len(taken) < limit:
            due, ticket_id = heapq.heappop(heap)
            if self._due.get(ticket_id) == due:
                del self._due[ticket_id]
                taken.append((ticket_id, due))
        return taken

    def drop_partitions(self, keep: set[int]) -> None:
        """Forget partitions this worker no longer owns."""
        for partition in [p for p in self._heaps if p not in keep]:
            for _, ticket_id in self._heaps.pop(partition):
                self._due.pop(ticket_id, None)
