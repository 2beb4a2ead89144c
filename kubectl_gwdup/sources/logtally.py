"""Access logs read into tallies (kubectl_gwdup/accesslog.py), on several cores.

Reading a log is bound by the interpreter, one core per process, so a big log is read by worker
processes: a saved file in byte ranges (each worker opens it and reads its own lines: nothing
crosses a pipe but the tallies), a stream (a pod's log, standard input) in blocks of whole lines
sent to the workers as they arrive. A tally is as big as the distinct requests in it, not the
lines, so memory stays flat however long the log.

Workers are forked (Linux), started from the main thread before any log stream is opened, so no
thread's lock is copied mid-use; elsewhere, or with --jobs 1, or for a small input, the lines are
read in this process, the same way.
"""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Tuple

from ..accesslog import MAX_LINE, Parser, Tally

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

BLOCK = 1 << 18  # bytes of whole lines per unit of work (a few of them in memory at once)
SMALL = 16 << 20  # a file smaller than this is read in this process: forking costs more
READ = 1 << 18
_parsers: Dict[Any, Parser] = {}  # in a worker: the parser of each format, built once


def default_jobs() -> int:
    """Cores to read logs on: those this process may run on, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def blocks(chunks: Iterable[bytes], size: int = BLOCK, max_line: int = MAX_LINE) -> Iterator[bytes]:
    """Byte chunks -> blocks of whole lines (split on b"\\n"; a block has no final line break),
    about `size` bytes each, the work done per chunk, not per line. A line that spans chunks is
    held to max_line + 1 bytes: longer, it is cut there (it will not parse, and is counted so)."""
    buf = bytearray()  # whole lines, each with its line break
    line = bytearray()  # the line still open at the end of the last chunk
    for chunk in chunks:
        first = chunk.find(b"\n")
        if first < 0:
            line += chunk[:max(0, max_line + 1 - len(line))]
            continue
        last = chunk.rfind(b"\n")
        line += chunk[:min(first, max(0, max_line + 1 - len(line)))]
        buf += line
        buf += chunk[first:last + 1]  # its line break, then the chunk's whole lines
        line = bytearray(chunk[last + 1:last + 2 + max_line])
        if len(buf) >= size:
            yield bytes(buf[:-1])
            buf = bytearray()
    if line:
        buf += line
        buf += b"\n"
    if buf:
        yield bytes(buf[:-1])


def tally_block(spec: Any, data: bytes) -> Tally:
    """One block of whole lines, read (in a worker, or here)."""
    parser = _parsers.get(spec)
    if parser is None:
        parser = _parsers[spec] = Parser.from_spec(spec)
    return parser.tally(data.split(b"\n"))


def tally_range(spec: Any, path: str, start: int, end: int) -> Tally:
    """The lines of a file that begin in [start, end)."""
    total = Tally()
    for data in blocks(_range_chunks(path, start, end)):
        total.merge(tally_block(spec, data))
    return total


def _range_chunks(path: str, start: int, end: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        if start > 0:  # the line that began before start is the previous range's
            f.seek(start - 1)
            if f.read(1) != b"\n":
                while True:
                    chunk = f.read(READ)
                    if not chunk:
                        return
                    nl = chunk.find(b"\n")
                    if nl >= 0:
                        start = f.tell() - len(chunk) + nl + 1
                        break
                f.seek(start)
        if start >= end:  # no line begins in the range
            return
        pos, last = start, b"\n"
        while pos < end:
            chunk = f.read(min(READ, end - pos))
            if not chunk:
                return
            pos += len(chunk)
            last = chunk[-1:]
            yield chunk
        while last != b"\n":  # finish the line that began before end
            chunk = f.read(READ)
            if not chunk:
                return
            nl = chunk.find(b"\n")
            if nl >= 0:
                yield chunk[:nl + 1]
                return
            yield chunk


def _ready(_: int) -> int:
    return os.getpid()


class Tallier:
    """Reads logs into tallies, on `jobs` worker processes when that pays."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._pool: "Optional[ProcessPoolExecutor]" = None

    def start(self) -> None:
        """Fork the workers now (call from the main thread, before streams are opened)."""
        if self.jobs <= 1 or self._pool is not None or not sys.platform.startswith("linux"):
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor  # imported when used: it costs memory

        self._pool = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("fork"))
        list(self._pool.map(_ready, range(self.jobs)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def file(self, spec: Any, path: str) -> Tally:
        size = os.path.getsize(path)
        if size < SMALL or self.jobs <= 1:
            return tally_range(spec, path, 0, size)
        self.start()
        if self._pool is None:
            return tally_range(spec, path, 0, size)
        parts = self.jobs * 4  # several ranges per worker: an uneven range does not hold the rest up
        edges = [size * k // parts for k in range(parts + 1)]
        total = Tally()
        for got in self._pool.map(tally_range, [spec] * parts, [path] * parts, edges[:-1], edges[1:]):
            total.merge(got)
        return total

    def stream(self, spec: Any, data: Iterable[bytes], into: Tally) -> None:
        """Blocks of whole lines (see `blocks`) into `into`: on the workers when started, with at
        most two blocks per worker in flight (memory stays flat), else here."""
        pool = self._pool
        if pool is None:
            for block in data:
                into.merge(tally_block(spec, block))
            return
        flight: List["Future[Tally]"] = []
        for block in data:
            flight.append(pool.submit(tally_block, spec, block))
            if len(flight) >= 2 * self.jobs:
                into.merge(flight.pop(0).result())
        for f in flight:
            into.merge(f.result())


def first_lines(data: Iterator[bytes], want: int) -> Tuple[List[bytes], Iterator[bytes]]:
    """Up to `want` first lines of blocks, and the blocks again from the start (nothing lost)."""
    seen: List[bytes] = []
    lines: List[bytes] = []
    for block in data:
        seen.append(block)
        lines += block.split(b"\n", want)[:want]
        if len(lines) >= want:
            break

    def again() -> Iterator[bytes]:
        yield from seen
        yield from data

    return lines[:want], again()
