"""Keep the native libraries' start-up chatter off stderr.

MediaPipe (absl logging, before ``InitGoogle``), TensorFlow Lite and OpenCV
write lines such as ``WARNING: Logging before InitGoogle() is written to
STDERR`` and ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``
straight to file descriptor 2 while a model is being loaded. Python's logging
never sees them, environment variables (``GLOG_minloglevel``,
``TF_CPP_MIN_LOG_LEVEL``) do not reach absl's logger in the mediapipe wheel,
and they break ``--json 2>&1`` pipelines.

:func:`quiet_native_logs` points fd 2 at a pipe for the duration of a model
load only. A reader thread drops the known informational and warning lines
and copies everything else (errors, other threads' output, Python's own
stderr) to the real stderr, so nothing but that noise is lost even when other
threads write meanwhile. Loads run one at a time (a lock). Set
``HEALTHCODE_FACE_NATIVE_LOGS=1`` to see the lines again.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

NATIVE_LOGS_ENV = "HEALTHCODE_FACE_NATIVE_LOGS"

NOISE = re.compile(
    rb"^(?:WARNING: Logging before InitGoogle\(\)"  # absl, before InitGoogle
    rb"|INFO: "  # TensorFlow Lite's minimal logging
    rb"|[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "  # absl INFO and WARNING lines
    rb"|\[ (?:INFO|WARN):)"  # OpenCV's logger
)
"""Lines dropped while a model loads. Errors (absl ``E``/``F``, ``ERROR:``) pass."""

_lock = threading.Lock()


def native_logs_wanted(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(NATIVE_LOGS_ENV, "").strip().lower() not in ("", "0", "false", "no")


def filter_lines(data: bytes) -> bytes:
    """``data`` (whole lines) without the noise lines."""
    return b"".join(line for line in data.splitlines(keepends=True) if not NOISE.match(line))


def _pump(read_fd: int, out_fd: int) -> None:
    """Copy lines from ``read_fd`` to ``out_fd`` without the noise, until EOF."""
    pending = b""
    try:
        while chunk := os.read(read_fd, 65536):
            pending += chunk
            cut = pending.rfind(b"\n") + 1
            if cut:
                _write_all(out_fd, filter_lines(pending[:cut]))
                pending = pending[cut:]
        _write_all(out_fd, filter_lines(pending))
    except OSError:  # pragma: no cover - stderr went away
        pass
    finally:
        os.close(read_fd)
        os.close(out_fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _flush_python_stderr() -> None:
    stream = sys.stderr
    if stream is not None:
        with contextlib.suppress(Exception):
            stream.flush()


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Drop the native libraries' noise lines written to fd 2 inside this block."""
    if native_logs_wanted():
        yield
        return
    with _lock:
        try:
            saved = os.dup(2)
            out = os.dup(saved)
            read_fd, write_fd = os.pipe()
        except OSError:  # no usable fd 2 (a daemon with stderr closed): nothing to quiet
            yield
            return
        _flush_python_stderr()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        pump = threading.Thread(
            target=_pump, args=(read_fd, out), name="healthcode-native-log-filter", daemon=True
        )
        pump.start()
        try:
            yield
        finally:
            _flush_python_stderr()
            os.dup2(saved, 2)  # the pipe's last writer closes: the reader sees EOF
            os.close(saved)
            # A subprocess started inside the block keeps the pipe open; its
            # output then goes on flowing through the (daemon) reader.
            pump.join(timeout=5)
