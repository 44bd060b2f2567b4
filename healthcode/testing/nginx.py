"""nginx in front of healthcode nodes, for the tests and benchmarks.

The shipped site config (``deploy/nginx.conf``, an include for nginx's
``http`` block) is rendered for a listen port on loopback and the nodes' ports
into a folder of its own, with a main ``nginx.conf`` around it whose pid file,
error log and temporary files all lie in that folder; nginx then runs in the
foreground as this user (``nginx -p FOLDER -c FOLDER/nginx.conf -g 'daemon
off;'``), never as the system's service::

    with running_nginx(tmp / "nginx", [8001, 8002]) as proxy:
        httpx.get(f"{proxy.url}/health/ready")

Only what a test or a benchmark must change is replaced (listen address, the
upstream servers, and on request the limits, see ``NginxLimits``); every other
line is the operator's. A pattern that no longer matches the shipped file is an
error, not a silent no-op, so the config and the tests cannot drift apart.
``nginx_binary()`` is None when nginx is not installed: the caller skips.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from attrs import frozen

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
"""deploy/nginx.conf of a source checkout; an installed package has none (pass
the path instead)."""
SITE_FILE = "healthcode.conf"
MAIN_FILE = "nginx.conf"
ERROR_LOG = "error.log"
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@frozen
class NginxLimits:
    """Limits to set instead of the shipped ones; None keeps the shipped value."""

    per_client_rate: str | None = None
    """``limit_req_zone ... rate=`` of zone healthcode_per_client, e.g. "100000r/s"."""
    per_client_in_flight: int | None = None
    """``limit_conn healthcode_conn N``: requests in flight per client address."""
    total_in_flight: int | None = None
    """``limit_conn healthcode_total N``: requests in flight for all clients together."""


@frozen
class RunningNginx:
    """An nginx started by ``running_nginx``."""

    url: str
    """Its base URL, http://127.0.0.1:PORT."""
    port: int
    pid: int
    """The master process (its workers are in its process group)."""
    folder: Path
    """Its configs, pid file, error log and temporary files."""

    def error_log(self) -> str:
        """The error log so far (nginx logs each refusal of its limits there)."""
        path = self.folder / ERROR_LOG
        return path.read_text(errors="replace") if path.exists() else ""


def nginx_binary() -> str | None:
    """The nginx executable, or None when it is not installed. Debian puts it in
    /usr/sbin, which is not on an ordinary user's PATH."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None


def shipped_config(config: Path | None = None) -> Path:
    """The site config to render: ``config`` if given, else deploy/nginx.conf of
    the source checkout this package was imported from."""
    path = config or SHIPPED_CONFIG
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no nginx site config here (an installed package carries none: "
            "pass the path of deploy/nginx.conf)"
        )
    return path


def render_site(
    template: str,
    listen_port: int,
    upstream_ports: Sequence[int],
    limits: NginxLimits | None = None,
) -> str:
    """``template`` (the text of deploy/nginx.conf) listening on
    127.0.0.1:``listen_port`` in front of the nodes on 127.0.0.1 at
    ``upstream_ports``, with ``limits`` set. Raises ValueError when a line to
    replace is not in the template."""
    if not upstream_ports:
        raise ValueError("at least one upstream port is needed")
    limits = limits or NginxLimits()
    servers = "".join(
        f"    server 127.0.0.1:{port} max_fails=3 fail_timeout=10s;\n" for port in upstream_ports
    )
    upstream = r"(?m)^    server 127\.0\.0\.1:\d+ [^\n]*\n(?:    server 127\.0\.0\.1:\d+ [^\n]*\n)*"
    replacements = [
        (upstream, servers),
        (r"(?m)^    listen 80;", f"    listen 127.0.0.1:{listen_port};"),
    ]
    if limits.per_client_rate is not None:
        rate = limits.per_client_rate
        replacements.append((r"(zone=healthcode_per_client:\w+ rate=)\d+r/[sm];", rf"\g<1>{rate};"))
    for zone, value in (
        ("healthcode_conn", limits.per_client_in_flight),
        ("healthcode_total", limits.total_in_flight),
    ):
        if value is not None:
            replacements.append((rf"limit_conn {zone} \d+;", f"limit_conn {zone} {value};"))
    text = template
    for pattern, new in replacements:
        text, count = re.subn(pattern, new, text, count=1)
        if count != 1:
            raise ValueError(f"the nginx site config has no line matching {pattern!r}")
    return text


def render_main(folder: Path, *, worker_processes: int = 1, access_log: bool = False) -> str:
    """The main config around the site file in ``folder``: pid file, error log
    and temporary files in ``folder`` (the temporary folders are made here)."""
    lines = [f"worker_processes {worker_processes};"]
    if os.geteuid() == 0:
        # Run by root, nginx's workers would become "nobody", who cannot enter a
        # private temporary folder to buffer a large upload: they stay this user.
        lines.append("user root;")
    lines += [
        f"pid {folder / 'nginx.pid'};",
        f"error_log {folder / ERROR_LOG} warn;",
        "events { worker_connections 8192; }",
        "http {",
        f"    access_log {folder / 'access.log'};" if access_log else "    access_log off;",
    ]
    for name in _TEMP_PATHS:
        (folder / name).mkdir(exist_ok=True)
        lines.append(f"    {name}_temp_path {folder / name};")
    lines += [f"    include {folder / SITE_FILE};", "}"]
    return "\n".join(lines) + "\n"


def write_config(
    folder: Path,
    listen_port: int,
    upstream_ports: Sequence[int],
    *,
    config: Path | None = None,
    limits: NginxLimits | None = None,
    worker_processes: int = 1,
    access_log: bool = False,
) -> Path:
    """Render the site and the main config into ``folder`` (made if missing):
    the main config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    site = render_site(shipped_config(config).read_text(), listen_port, upstream_ports, limits)
    (folder / SITE_FILE).write_text(site)
    main = folder / MAIN_FILE
    main.write_text(render_main(folder, worker_processes=worker_processes, access_log=access_log))
    return main


def _command(binary: str, main: Path) -> list[str]:
    folder = main.parent
    # -e: the error log before the config is read (else nginx opens the
    # system's /var/log/nginx/error.log, which this user may not write).
    return [binary, "-p", str(folder), "-c", str(main), "-e", str(folder / ERROR_LOG)]


def check_config(main: Path, env: Mapping[str, str] | None = None) -> str:
    """``nginx -t`` on a written config: its report; RuntimeError if it fails
    (or nginx is not installed)."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed")
    checked = subprocess.run(
        [*_command(binary, main), "-t"],
        capture_output=True,
        text=True,
        check=False,
        env=None if env is None else dict(env),
    )
    if checked.returncode != 0:
        raise RuntimeError(f"nginx -t failed: {checked.stderr.strip()}")
    return checked.stderr.strip()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def running_nginx(
    folder: Path,
    upstream_ports: Sequence[int],
    *,
    listen_port: int | None = None,
    config: Path | None = None,
    limits: NginxLimits | None = None,
    worker_processes: int = 1,
    access_log: bool = False,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/health/ready",
    timeout: float = 20.0,
) -> Iterator[RunningNginx]:
    """nginx in front of ``upstream_ports``, as this user, until the block ends
    (then stopped gracefully, or killed after 10 s). Ready once ``ready_path``
    answers 200 through it (so the nodes must be up); RuntimeError if the
    config fails ``nginx -t``, nginx exits or ``timeout`` seconds pass first.
    ``env``: nginx's environment (e.g. without libfaketime)."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed")
    port = listen_port or _free_port()
    main = write_config(
        folder,
        port,
        upstream_ports,
        config=config,
        limits=limits,
        worker_processes=worker_processes,
        access_log=access_log,
    )
    check_config(main, env)
    process = subprocess.Popen(
        [*_command(binary, main), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=None if env is None else dict(env),
    )
    running = RunningNginx(f"http://127.0.0.1:{port}", port, process.pid, folder)
    try:
        deadline = time.monotonic() + timeout
        while not _answers(running.url + ready_path):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {running.error_log()[-2000:]}")
            time.sleep(0.1)
        yield running
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGQUIT (graceful: requests in progress end first), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGQUIT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
