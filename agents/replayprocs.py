"""The processes of `slamon replay --jobs`: one per shard, fed through pipes.

A sender thread per shard writes its batches, so that a shard blocked on writing a large
answer never waits for a reader blocked on sending it more.

Kept apart from the reader (`agents.replayjobs`) so that the reader can be compiled: a
compiled module cannot hold `ShardFailed`, whose base class stays interpreted. Compiled, the
reader took the same CPU (README, Performance), so the compiled build leaves it out.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import queue
import signal
import threading
import traceback
from collections.abc import Callable
from typing import Any

from agents.replayjobs import Answer, Shard, ShardWorker
from sla.engine import Engine
from sla.errors import SlamonError

__all__ = ["ProcessShard", "ShardFailed", "process_shards", "keep_freed_heap"]

# glibc's mallopt(3) parameters, and what they are set to (`keep_freed_heap`).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TRIM_THRESHOLD = 64 << 20
_MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit platforms


class ShardFailed(SlamonError):
    """A shard process failed or stopped; the message says which and why."""


class ProcessShard:
    """A shard in a child process, fed through a pipe by a sender thread."""

    def __init__(self, index: int, context: Any, make_engine: Callable[[], Engine],
                 not_after: int | None, siblings: list[ProcessShard]) -> None:
        self.index = index
        self._conn, child = context.Pipe()
        # A forked child inherits this process's end of its own pipe and of its siblings':
        # it closes them, or a shard would never see the end of its input when this
        # process closes its end (or dies).
        inherited = [self._conn] + [sibling._conn for sibling in siblings]
        self._process = context.Process(target=_serve,
                                        args=(child, inherited, make_engine, not_after),
                                        name=f"slamon-replay-shard-{index}", daemon=True)
        self._process.start()
        child.close()
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        # Started by `process_shards` once every shard is forked: a fork copies no thread
        # but the forking one, and a lock another thread held would stay held in the child.
        self._sender = threading.Thread(target=self._send, daemon=True)

    def start_sending(self) -> None:
        self._sender.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def submit(self, work: tuple) -> None:
        self._outbox.put(work)

    def answer(self) -> Answer:
        try:
            status, payload = self._conn.recv()
        except EOFError:
            self._process.join(timeout=5)
            code = self._process.exitcode
            how = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
                   else f"exit code {code}")
            raise ShardFailed(f"replay shard {self.index} stopped: {how}") from None
        if status == "error":
            raise ShardFailed(f"replay shard {self.index} failed:\n{payload}")
        return payload

    def close_pipe(self) -> None:
        """The end of the shard's input: it stops once it has answered what it was sent."""
        self._outbox.put(None)
        self._sender.join()
        self._conn.close()

    def close(self) -> None:
        """After a whole replay: the shard has answered everything and stops by itself."""
        if not self._conn.closed:
            self.close_pipe()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self.abort()

    def abort(self) -> None:
        """When the reader stops early (an error, Ctrl-C, a closed pipe): the shard may be
        blocked sending an answer nobody reads, and the sender blocked behind it, so the
        shard is killed first; then the sender's send fails and it ends."""
        self._process.kill()
        self._process.join()
        self._outbox.put(None)
        self._sender.join()
        self._conn.close()

    def _send(self) -> None:
        while (work := self._outbox.get()) is not None:
            try:
                self._conn.send(work)
            except OSError:
                return  # the shard is gone: `answer` says so


def _serve(conn: Any, inherited: list[Any], make_engine: Callable[[], Engine],
           not_after: int | None) -> None:
    for other in inherited:
        other.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the reader's: it closes the pipes
    try:
        worker = ShardWorker(make_engine(), not_after)
        while True:
            try:
                work = conn.recv()
            except EOFError:
                return  # the reader is done (or gone)
            conn.send(("ok", worker.handle(work)))
    except Exception:  # noqa: BLE001 -- handed to the reader, which reports it
        with contextlib.suppress(OSError):  # unless the reader is gone already
            conn.send(("error", traceback.format_exc()))


def keep_freed_heap() -> bool:
    """Have glibc keep the memory a batch frees for the next one; False where it cannot.

    Every batch allocates megabytes and frees them: the pickled work and answer, and
    the pipe's reads. By default glibc maps a block that large afresh and unmaps it when it is
    freed, and gives the freed top of its heap back to the kernel: the next batch takes it
    again page by page. Over 1M events that was 1.37M page faults and ~2.8 s of the ~3.8 s
    of system time (README, Performance). Fixed thresholds also stop glibc from tuning them.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS has no mallopt)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


def process_shards(jobs: int, make_engine: Callable[[], Engine],
                   not_after: int | None) -> list[Shard]:
    """`jobs` shard processes; forked where the platform can, so they start in milliseconds.

    Memory a batch frees is kept for the next (`keep_freed_heap`), in this process and, as
    a fork inherits it, in the shards."""
    keep_freed_heap()
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    shards: list[ProcessShard] = []
    for index in range(jobs):
        shards.append(ProcessShard(index, context, make_engine, not_after, list(shards)))
    for shard in shards:
        shard.start_sending()
    return list(shards)
