"""A kubectl-gwdup process that keeps running (check --watch, serve), read line by line.

Every wait is bounded: a line that does not come within its time fails the test with what
the process printed so far, and the process is always ended.
"""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Running:
    def __init__(self, args: List[str], env: Dict[str, str]) -> None:
        full = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "PYTHONPATH": ROOT, **env}
        self.proc = subprocess.Popen([sys.executable, "-m", "kubectl_gwdup", *args], env=full, cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.stdout: List[str] = []
        self.stderr: List[str] = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr, False), daemon=True).start()

    def _read(self, stream, into: List[str], queued: bool) -> None:
        for line in stream:
            into.append(line)
            if queued:
                self.lines.put(line)

    def expect(self, pred: Callable[[str], bool], timeout: float, what: str = "") -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line {what!r} within {timeout}s\nstdout:\n{''.join(self.stdout)}"
                                     f"\nstderr:\n{''.join(self.stderr)}")
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    time.sleep(0.1)
                    raise AssertionError(f"exited {self.proc.returncode} before {what!r}\nstdout:\n"
                                         f"{''.join(self.stdout)}\nstderr:\n{''.join(self.stderr)}")
                continue
            if pred(line):
                return line

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise AssertionError(f"did not stop within {timeout}s after signal {sig}")

    def wait_stderr(self, pred: Callable[[str], bool], timeout: float) -> Optional[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.stderr):
                if pred(line):
                    return line
            time.sleep(0.05)
        return None
