"""A command in a pseudo-terminal, its screen read through a terminal emulator (pyte).

What a user sees is the screen, not the byte stream: rich's live view redraws in place, so
the final screen (and every screen on the way) is what the tests assert on.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Sequence

import pyte


class Terminal:
    """Runs ``argv`` on a pty (stdin, stdout and stderr) in a process group of its own."""

    def __init__(
        self, argv: Sequence[str], env: dict[str, str], columns: int = 140, lines: int = 50
    ) -> None:
        self.screen = pyte.Screen(columns, lines)
        self.stream = pyte.ByteStream(self.screen)
        self.screens: list[str] = []
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        self.process = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(lines)},
            start_new_session=True,  # its own process group, as a shell's foreground job
        )
        os.close(slave)
        self.closed = False

    @property
    def text(self) -> str:
        """The screen as it is now, lines joined, trailing blanks removed."""
        return "\n".join(line.rstrip() for line in self.screen.display).rstrip()

    def _pump(self, timeout: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the command exited and the pty closed
            data = b""
        if not data:
            self.closed = True
            return
        self.stream.feed(data)
        self.screens.append(self.text)

    def until(self, seen: Callable[[str], bool], timeout: float = 30.0, what: str = "") -> str:
        """Read output until ``seen(screen)``; the screen then. TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while not seen(self.text):
            if self.closed or time.monotonic() > deadline:
                raise TimeoutError(f"never saw {what or seen}; screen:\n{self.text}")
            self._pump(0.1)
        return self.text

    def ctrl_c(self) -> None:
        """Ctrl-C: SIGINT to the command's process group, as the terminal driver sends it."""
        os.killpg(self.process.pid, signal.SIGINT)

    def finish(self, timeout: float = 60.0) -> int:
        """Read until the command exits; its exit status."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self._pump(0.1)
        try:
            return self.process.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            self.close()

    def close(self) -> None:
        """End the command if it still runs (by its pid) and close the pty."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
