"""Fixtures for the integration suite; the harness itself is in berth_harness.py."""

import os
import shutil
import threading

import pytest

from agent_harness import podman_service
from berth_harness import BerthServer


def _make_server(tmp_path_factory, name, **kw):
    return BerthServer(tmp_path_factory.mktemp(name), **kw).start()


def _teardown(server):
    try:
        if server.proc is not None:
            rc = server.stop()
            assert rc == 0, f"berth server exited {rc} on SIGTERM; stderr: {server.stderr()}"
    finally:
        server.stop_proxy()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server per test module; tests using it pick unique resource names."""
    s = _make_server(tmp_path_factory, "berth-shared")
    yield s
    _teardown(s)


@pytest.fixture
def server(tmp_path_factory):
    """A fresh server (empty state) for tests that count or list everything."""
    s = _make_server(tmp_path_factory, "berth")
    yield s
    _teardown(s)


@pytest.fixture
def make_server(tmp_path_factory):
    """Factory for servers with extra flags: make_server(extra_args=[...], credentials=...)."""
    made = []

    def make(**kw):
        s = _make_server(tmp_path_factory, "berth-custom", **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        _teardown(s)


@pytest.fixture(scope="module")
def ecs(shared_server):
    return shared_server.client()


_counter = [0]
_counter_lock = threading.Lock()


@pytest.fixture
def unique():
    """unique('web') -> 'web-<n>-<pid>': names that never collide within a shared server."""
    def make(prefix):
        with _counter_lock:
            _counter[0] += 1
            return f"{prefix}-{_counter[0]}-{os.getpid()}"
    return make


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    """A Podman service per module (Docker API on a private socket) with the busybox image."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    with podman_service(tmp_path_factory.mktemp("podman")) as p:
        yield p
