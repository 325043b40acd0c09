"""What every command line shares: argument checks, one-line errors, Ctrl-C, and the lock on a run folder.

A user error (a bad argument, a missing or unreadable file, bad data, an unusable device) ends the command with
one line `<prog>: error: <message>` on stderr and exit status 2; `--debug` (or ISEG_DEBUG=1 in the environment)
prints the traceback too. Ctrl-C ends it with `<prog>: interrupted: <what was kept>` and exit status 130.
A run writes its `--out` folder only while it holds the folder's lock file (`.iseg.lock`, removed on exit):
a second run into the same folder stops at once, before any work.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from iseg.values import range_error, split_names

DEBUG_ENV = "ISEG_DEBUG"
LOCK_NAME = ".iseg.lock"
USER_ERRORS = (ValueError, OSError, RuntimeError, yaml.YAMLError)
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with a note on what was kept and how to continue."""


def require_positive(parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str) -> None:
    """Stop with a usage error (exit 2) when one of the named options is given and outside its range: 1 or more,
    and at most the limit of `iseg.values.RANGES` for sizes, clicks and threads."""
    for name in names:
        value = getattr(args, name)
        error = None if value is None else range_error(name, value)
        if error:
            parser.error(f"--{name.replace('_', '-')} {error}")


def parse_names(parser: argparse.ArgumentParser, option: str, text: str) -> list[str]:
    """The items of a comma-separated option value; an empty item or a repeated one is a usage error."""
    try:
        return split_names(text, option)
    except ValueError as error:
        parser.error(str(error))


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """Add `--debug`: print the traceback of an error too."""
    parser.add_argument("--debug", action="store_true",
                        help=f"print the traceback of an error, not only its message (or set {DEBUG_ENV}=1)")


def debug_wanted(debug_flag: bool = False) -> bool:
    """Whether tracebacks are shown: the --debug flag or a non-empty, non-zero ISEG_DEBUG."""
    return debug_flag or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def one_line(error: BaseException) -> str:
    """An exception as one readable line (printable even with undecodable file-name bytes)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@contextmanager
def reporting(prog: str, debug: bool = False) -> Iterator[None]:
    """Turn user errors into one line on stderr + SystemExit(2), and Ctrl-C into a note + SystemExit(130)."""
    try:
        yield
    except KeyboardInterrupt as interrupt:
        note = one_line(interrupt) if str(interrupt) else "nothing was kept"
        print(f"{prog}: interrupted: {note}", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except USER_ERRORS as error:
        if debug_wanted(debug):
            traceback.print_exc()
        hint = "" if debug_wanted(debug) else f" (--debug or {DEBUG_ENV}=1 shows the traceback)"
        print(f"{prog}: error: {one_line(error)}{hint}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None


class RunLock:
    """The lock file of a run folder: held from `acquire` to `release`; the kernel drops it if the process dies."""

    def __init__(self, folder: Path | str) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None
        self._created = False

    def acquire(self) -> RunLock:
        """Create the folder and take its lock; raises if the folder is not writable or another run holds it."""
        try:
            self._created = self._created or not self.path.parent.exists()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise PermissionError(f"cannot write into the output folder {self.path.parent}: "
                                  f"{error.strerror or error}; choose a writable --out") from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise FileExistsError(f"the output folder {self.path.parent} is in use by another run ({holder}); "
                                  f"wait for it to end or choose another --out") from None
        if not self._current(fd):  # its holder ended and removed it between our open and flock: retry
            os.close(fd)
            return self.acquire()
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}: {' '.join(sys.argv)}"[:200].encode(errors="replace"))
        self._fd = fd
        return self

    def _current(self, fd: int) -> bool:
        """Whether `fd` is still the file at the lock path."""
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        """Remove the lock file and drop the lock (nothing if not held); a folder it created and left empty goes too."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None
        if self._created and not any(self.path.parent.iterdir()):
            self.path.parent.rmdir()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
