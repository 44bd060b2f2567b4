"""Two nodes behind nginx (issue 13): deploy/nginx.conf as shipped, rendered
for this test's ports by ``healthcode.testing.nginx`` and run as this user.

The nodes (``tests/clocked_uvicorn.py``, as in tests/test_multinode.py) share a
PostgreSQL database and the system Redis (under a key prefix of this module's
own, flushed before each test), and take the client address from
X-Forwarded-For when the request comes from 127.0.0.1 only, as
``healthcode serve --forwarded-allow-ips 127.0.0.1`` does:

* requests through nginx reach both nodes;
* a live code verified through nginx is refused as replayed through nginx,
  whichever node answers;
* a client cannot choose its address: nginx replaces the X-Forwarded-For it
  sends, so the per-address rate limit counts the real client;
* beyond its total cap on requests in flight nginx answers 503 itself
  (Retry-After, the service's problem document), and the request never
  reaches a node; /health/ready still answers through it.

Marked ``multinode``; PostgreSQL, Redis or nginx missing skips them, or fails
them under ``CI=true`` (scripts/system-packages --with-test-fonts installs nginx).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from attrs import frozen
from support.cluster import (
    Cluster,
    db_call,
    guard_token,
    holder_with_pass,
    require,
    running_cluster,
    shared_services,
    verify,
)
from support.processes import without_libfaketime
from support.redis import flush_prefix

from healthcode.core.auth import create_token
from healthcode.testing.nginx import (
    NginxLimits,
    RunningNginx,
    check_config,
    nginx_binary,
    render_site,
    running_nginx,
    shipped_config,
    write_config,
)

pytestmark = pytest.mark.multinode

RATE_LIMIT = 10
"""Requests per client address per minute (counted across both nodes)."""
PROXY = "127.0.0.1"
"""The only address whose X-Forwarded-For the nodes believe (nginx's)."""


@frozen
class Proxied:
    """Two nodes and nginx (deploy/nginx.conf as shipped) in front of them."""

    nodes: Cluster
    nginx: RunningNginx
    admin: dict[str, str]
    """Bearer header of an admin token (the nodes' /metrics)."""


@pytest.fixture(scope="module")
def proxied(
    postgres_url: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxied]:
    database_url, redis_url = shared_services(postgres_url)
    if nginx_binary() is None:
        require("nginx is not installed (scripts/system-packages --with-test-fonts)")
    home = tmp_path_factory.mktemp("behind-nginx")
    # uvicorn's options (clocked_uvicorn.py passes on uvicorn's command line,
    # which reads UVICORN_*), as `healthcode serve --forwarded-allow-ips
    # 127.0.0.1` sets them.
    uvicorn = {"UVICORN_PROXY_HEADERS": "true", "UVICORN_FORWARDED_ALLOW_IPS": PROXY}
    with (
        running_cluster(
            home, database_url, redis_url, rate_limit=RATE_LIMIT, extra_env=uvicorn
        ) as nodes,
        running_nginx(home / "nginx", nodes.ports, env=without_libfaketime(os.environ)) as nginx,
    ):
        admin = db_call(database_url, create_token, "admin", "metrics of the nginx test")
        yield Proxied(nodes, nginx, {"authorization": f"Bearer {admin}"})


@pytest.fixture
def cluster(proxied: Proxied) -> Proxied:
    """The nodes and nginx, their Redis keys (rate counts, used codes) flushed."""
    flush_prefix(proxied.nodes.redis_url, proxied.nodes.prefix)
    return proxied


# --- helpers -------------------------------------------------------------------------------


_SAMPLE = re.compile(r"^healthcode_verifications_total\{([^}]*)\} (\S+)$", re.M)


def _verifications(cluster: Proxied, node: str, code: str | None = None) -> float:
    """A node's verifications so far (from its /metrics): all, or with ``code``."""
    text = httpx.get(f"{node}/metrics", headers=cluster.admin, timeout=10).text
    return sum(
        float(value)
        for labels, value in _SAMPLE.findall(text)
        if code is None or f'code="{code}"' in labels
    )


@contextlib.contextmanager
def _held_in_nginx(url: str, path: str) -> Iterator[None]:
    """A request nginx holds in flight until the block ends: its headers sent
    (with ``Expect: 100-continue``), its body never. nginx answers
    ``100 Continue`` once it has counted the request against its limits and
    starts reading the body, which it reads whole before passing the request
    to a node: so no node ever sees it."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as held:
        held.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 64\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = held.recv(1024)
            assert chunk, f"nginx closed the held request: {answer!r}"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 100 Continue"), answer
        yield


# --- the cases ------------------------------------------------------------------------------


def test_requests_through_nginx_reach_both_nodes(cluster: Proxied) -> None:
    _, guard = guard_token(cluster.nodes)
    before = [_verifications(cluster, node) for node in cluster.nodes.urls]
    sent = 0
    reached = [0.0, 0.0]
    while sent < 6 and not all(reached):
        answer = verify(cluster.nginx.url, guard, "HCP1:x")
        assert answer.status_code == 200, answer.text
        assert answer.json()["ok"] is False  # an unreadable code: refused, but verified
        sent += 1
        reached = [
            _verifications(cluster, node) - b
            for node, b in zip(cluster.nodes.urls, before, strict=True)
        ]
    assert all(reached), f"{sent} requests through nginx reached the nodes as {reached}"
    assert sum(reached) == sent


def test_a_live_code_verified_through_nginx_is_refused_again_whichever_node_answers(
    cluster: Proxied,
) -> None:
    _, guard = guard_token(cluster.nodes)
    device, _, issued = holder_with_pass(cluster.nodes, "Q7654331", via=cluster.nginx.url)
    code = device.present(issued, now=cluster.nodes.now())
    first = verify(cluster.nginx.url, guard, code).json()
    assert (first["ok"], first["colour"]) == (True, "green")
    before = [_verifications(cluster, n, "presentation_replayed") for n in cluster.nodes.urls]
    refused_at = [0.0, 0.0]
    sent = 0
    while sent < 6 and not all(refused_at):
        again = verify(cluster.nginx.url, guard, code).json()
        assert (again["ok"], again["code"]) == (False, "presentation_replayed")
        sent += 1
        refused_at = [
            _verifications(cluster, n, "presentation_replayed") - b
            for n, b in zip(cluster.nodes.urls, before, strict=True)
        ]
    assert all(refused_at), f"replays refused by node: {refused_at}"


def test_a_client_cannot_choose_its_address_through_nginx(cluster: Proxied) -> None:
    sends = 2 * RATE_LIMIT + 1  # within two windows of a minute at most: one gets N + 1

    def answers(url: str) -> list[httpx.Response]:
        return [
            httpx.post(
                f"{url}/guard/verifications",
                json={"presentation": "x"},
                headers={"x-forwarded-for": f"203.0.113.{i + 1}"},
            )
            for i in range(sends)
        ]

    # The nodes do believe X-Forwarded-For from 127.0.0.1: sent straight to a
    # node, each request counts for the address it names, and none is refused.
    direct = answers(cluster.nodes.urls[0])
    assert [r.status_code for r in direct if r.status_code == 429] == []
    # Through nginx the header is replaced by the client's real address
    # (127.0.0.1 here): every request counts for it, and the limit refuses.
    proxied = answers(cluster.nginx.url)
    refused = [r for r in proxied if r.status_code == 429]
    assert refused, "nginx passed on the address the client chose"
    assert {r.json()["code"] for r in refused} == {"too_many_requests"}
    assert {r.status_code for r in proxied} <= {401, 429}


@pytest.fixture
def capped(cluster: Proxied, tmp_path: Path) -> Iterator[RunningNginx]:
    """A second nginx in front of the same nodes, its total cap at 1 in flight."""
    with running_nginx(
        tmp_path / "nginx",
        cluster.nodes.ports,
        limits=NginxLimits(total_in_flight=1),
        env=without_libfaketime(os.environ),
    ) as nginx:
        yield nginx


def test_beyond_its_total_cap_nginx_refuses_before_any_node(
    cluster: Proxied, capped: RunningNginx
) -> None:
    _, guard = guard_token(cluster.nodes)
    device, _, issued = holder_with_pass(cluster.nodes, "Q7654332", via=cluster.nginx.url)
    code = device.present(issued, now=cluster.nodes.now())
    with _held_in_nginx(capped.url, "/guard/verifications"):
        busy = verify(capped.url, guard, code)
        # Readiness is never capped: a load balancer still sees the nodes up.
        assert httpx.get(f"{capped.url}/health/ready").status_code == 200
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "2"
    assert busy.headers["content-type"].startswith("application/problem+json")
    problem = busy.json()
    assert (problem["code"], problem["status"]) == ("service_busy", 503)
    assert problem["message_zh"] and problem["message_en"]
    assert 'limiting connections by zone "healthcode_total"' in capped.error_log()
    # The refused request never reached a node: its live code is still unused.
    accepted = verify(cluster.nodes.urls[1], guard, code).json()
    assert (accepted["ok"], accepted["colour"]) == (True, "green")


def test_readiness_answers_through_nginx(cluster: Proxied) -> None:
    ready = httpx.get(f"{cluster.nginx.url}/health/ready")
    assert ready.status_code == 200
    direct = httpx.get(f"{cluster.nodes.urls[0]}/health/ready")
    assert ready.json() == direct.json()


# --- the config itself ----------------------------------------------------------------------


def test_the_shipped_config_passes_nginx_t_with_its_total_cap(tmp_path: Path) -> None:
    if nginx_binary() is None:
        require("nginx is not installed (scripts/system-packages --with-test-fonts)")
    main = write_config(tmp_path, 8080, [8001, 8002, 8003])
    check_config(main, without_libfaketime(os.environ))
    site = (tmp_path / "healthcode.conf").read_text()
    assert "limit_conn_zone $server_name zone=healthcode_total:1m;" in site
    location = site.split("location / {", 1)[1].split("}", 1)[0]
    assert re.search(r"^\s*limit_conn healthcode_total 128;", location, re.M)
    assert site.count("    server 127.0.0.1:") == 3


def test_rendering_refuses_a_config_that_drifted() -> None:
    drifted = shipped_config().read_text().replace("limit_conn healthcode_total", "# removed")
    with pytest.raises(ValueError, match="healthcode_total"):
        render_site(drifted, 8080, [8001], NginxLimits(total_in_flight=4))
    with pytest.raises(ValueError, match="listen"):
        render_site("upstream u {\n    server 127.0.0.1:1 weight=1;\n}\n", 8080, [8001])
