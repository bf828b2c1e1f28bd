"""Output files of batch jobs: checked before any work, held exclusively for the job's life.

:func:`exclusive_output` takes an advisory lock (``fcntl.flock``, exclusive, non-blocking) on
a sidecar file ``OUT.lock`` next to the output and holds it until the job ends, so a second
job on the same output is refused at once instead of writing every id a second time. The
lock goes with the process (a killed job leaves no stale lock: the kernel drops it); the
sidecar file itself stays, holding the pid of the last job that took it. Locks bind only
processes that take them (every batch job does) and need a file system with working
``flock`` (local ones do; on NFS it is emulated with POSIX locks).

Unusable outputs are refused before any model loads, with a
:class:`~constrained.errors.ConfigError` naming the path: a directory, something that is not a
regular file (a FIFO, a device), a read-only file (no write permission bit, even for root),
or a folder that cannot be written; a write that fails later (disk full) names the path
too, and rerunning the same command resumes where it stopped.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError


def lock_path(output: str | Path) -> Path:
    """The sidecar lock file of ``output``: ``OUT.lock``."""
    out = Path(output)
    return out.with_name(out.name + ".lock")


def write_error(path: str | Path, e: OSError) -> ConfigError:
    """A ConfigError naming ``path`` for an OSError met while writing it."""
    why = e.strerror or str(e)
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return ConfigError(f"cannot write {path}: {why} (disk full); free space and rerun the same "
                           "command to resume")
    return ConfigError(f"cannot write {path}: {why}")


def check_output(output: str | Path) -> Path:
    """``output`` as a Path, its folder created; ConfigError when it cannot be a job's output."""
    out = Path(output)
    try:
        st = out.stat()
    except FileNotFoundError:
        st = None
    except OSError as e:  # a name too long, a loop of links, a file used as a folder
        raise ConfigError(f"output {out} cannot be used: {e.strerror or e}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"output {out} is a directory; give a file path (e.g. {out}/results.jsonl)")
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"output {out} is not a regular file (a FIFO, socket or device)")
        if not st.st_mode & 0o222:
            raise ConfigError(f"output {out} is read-only (no write permission); chmod u+w it or choose "
                              "another output")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the folder of output {out}: {e.strerror or e}") from None
    try:
        with open(out, "ab"):
            pass
    except OSError as e:
        raise write_error(out, e) from None
    return out


@contextmanager
def exclusive_output(output: str | Path) -> Iterator[Path]:
    """Check ``output`` and hold the job lock on it for the ``with`` block; ConfigError when
    another job holds it (the message names its pid and the lock file)."""
    out = check_output(output)
    lock = lock_path(out)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise ConfigError(f"cannot create the lock file {lock} of output {out}: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip() or "unknown"
            raise ConfigError(f"output {out} is being written by another batch job (pid {holder}, lock "
                              f"{lock}); wait for it to finish or choose another output") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield out
    finally:
        os.close(fd)
