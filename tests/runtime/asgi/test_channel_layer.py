"""The Redis channel layer: readiness follows it, and group messages cross processes."""

import asyncio
import socket
import uuid

import pytest
from websockets.asyncio.client import connect
from ws_helpers import ORIGIN, ws_url

from tests.tcp_proxy import TcpProxy

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


@pytest.fixture(scope="module")
def redis_url() -> str:
    """URL of the machine's Redis (database 5); skips when unreachable."""
    try:
        socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=2).close()
    except OSError as error:
        pytest.skip(f"Redis on {REDIS_HOST}:{REDIS_PORT} is not reachable: {error}")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/5"


@pytest.mark.parametrize(
    ("layer", "fault"),
    [("core", "cut"), ("core", "blackhole"), ("pubsub", "cut")],
)
def test_readiness_follows_the_channel_layer_and_liveness_ignores_it(
    start_serve, redis_url, layer, fault
):
    with TcpProxy(REDIS_PORT, REDIS_HOST) as proxy:
        served = start_serve(
            "--websockets",
            "--check-timeout",
            "1",
            env={
                "TESTPROJECT_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/5",
                "TESTPROJECT_CHANNEL_LAYER": layer,
            },
        )
        served.wait_probe("/ready", 200, timeout=15)
        getattr(proxy, fault)()  # connections reset, or a silent partition
        body = served.wait_probe("/ready", 503, timeout=15, reason="channel layer unreachable")
        assert served.probe("/alive")[0] == 200
        assert any("channel layer" in reason for reason in body["reasons"])
        proxy.restore()
        served.wait_probe("/ready", 200, timeout=20)


def test_no_channel_layer_reason_without_websockets(start_serve, redis_url):
    with TcpProxy(REDIS_PORT, REDIS_HOST) as proxy:
        proxy.cut()  # Redis unreachable from the start
        served = start_serve(env={"TESTPROJECT_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/5"})
        served.wait_probe("/ready", 200, timeout=15)


@pytest.mark.parametrize("layer", ["core", "pubsub"])
def test_a_group_message_reaches_clients_of_two_serve_processes(start_serve, redis_url, layer):
    env = {"TESTPROJECT_REDIS_URL": redis_url, "TESTPROJECT_CHANNEL_LAYER": layer}
    first = start_serve("--websockets", env=env)
    second = start_serve("--websockets", env=env)
    group = f"test-{uuid.uuid4().hex}"
    text = f"hello {uuid.uuid4().hex}"

    async def broadcast():
        path = f"/ws/broadcast/?group={group}"
        async with (
            connect(ws_url(first, path), origin=ORIGIN) as one,
            connect(ws_url(second, path), origin=ORIGIN) as other,
        ):
            await one.send(text)
            return await asyncio.wait_for(asyncio.gather(one.recv(), other.recv()), timeout=10)

    assert asyncio.run(broadcast()) == [text, text]
    # A graceful stop lets the consumers leave their group: nothing stays behind in Redis.
    assert first.stop() == 0 and second.stop() == 0
