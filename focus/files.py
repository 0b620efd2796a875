"""Writing files so that nothing is ever left half-written.

Every writer in the project (generated Verilog, exported test vectors, reports, benchmark results)
goes through :func:`atomic_open` or :func:`write_atomic`: the data goes to a temporary file in the
destination folder, which replaces the destination only once it is complete. An error or an
interrupt leaves the previous file (or none) in place, never a truncated one.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

__all__ = ["output_to", "atomic_open", "write_atomic", "build_root", "unwritable", "out_refused",
           "write_refused"]


def build_root() -> Path:
    """Where build output goes: ``$FOCUS_BUILD_DIR``, else ``build/`` under the current directory."""
    return Path(os.environ.get("FOCUS_BUILD_DIR", "build")).resolve()


def unwritable(path: str | Path) -> str | None:
    """Why :func:`atomic_open` could not write ``path``, or None when it probably can: ``path`` is a
    folder, a parent of it is not a folder, or its nearest existing folder is not writable. Tools
    call this before their work, so a bad output path is refused up front."""
    path = Path(path)
    if path.is_dir():
        return "a file path (it is a directory)"
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"a path under folders ({parent} is not a directory)"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"a path in a writable folder ({parent} is not writable)"
    return None


def out_refused(path: str | Path) -> str | None:
    """The one-line refusal of ``--out=path`` that :func:`unwritable` finds, or None."""
    reason = unwritable(path)
    return None if reason is None else f"--out={str(path)!r} is not allowed: {reason}"


def write_refused(path: str | Path, err: OSError) -> str:
    """The one-line refusal of ``--out=path`` when writing it failed after all (``err``)."""
    return f"--out={str(path)!r} is not allowed: a writable file path ({err})"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on a clean exit it becomes ``path``."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode={mode!r} is not allowed: 'w' or 'wb'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        os.chmod(tmp, 0o666 & ~_umask())        # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` (text or bytes) to ``path`` atomically."""
    with atomic_open(path, "w" if isinstance(data, str) else "wb") as handle:
        handle.write(data)


@contextmanager
def output_to(log: Path | None) -> Iterator[None]:
    """Send this process's stdout and stderr, and so its children's (a build, a simulator), to the
    end of ``log`` while the block runs; with ``None`` leave them alone."""
    import sys
    if log is None:
        yield
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, target in zip(saved, (1, 2)):
                os.dup2(fd, target)
                os.close(fd)
