"""Small decisions of the ASGI side, without a server."""

import asyncio

from django.urls import include, path
from django.views import View

from hurricane_runtime.server.asgi import has_async_views, split_target
from hurricane_runtime.server.websocket import PING_BATCH, Pinger, close_code_label


def sync_view(request):
    pass


async def async_view(request):
    pass


class AsyncClassView(View):
    async def get(self, request):
        pass


def test_async_views_are_found_in_nested_url_patterns():
    assert not has_async_views(
        [path("a/", sync_view), path("b/", include([path("c/", sync_view)]))]
    )
    assert has_async_views([path("a/", sync_view), path("b/", include([path("c/", async_view)]))])
    assert has_async_views([path("v/", AsyncClassView.as_view())])


def test_request_targets_split_into_path_and_query():
    assert split_target("/a/b?x=1&y") == ("/a/b", "x=1&y")
    assert split_target("http://example.com/a?q") == ("/a", "q")
    assert split_target("http://example.com") == ("/", "")


def test_close_code_labels_stay_bounded():
    assert [close_code_label(code) for code in (1000, 1012, 3001, 4999, 5000, None)] == [
        "1000",
        "1012",
        "3xxx",
        "4xxx",
        "other",
        "1006",
    ]


class CountingSession:
    def __init__(self, log: list):
        self.log = log

    def keep_alive(self):
        self.log.append(self)


def test_one_timer_pings_every_open_socket_once_a_tick_in_batches():
    async def one_tick():
        log: list = []
        sessions = {CountingSession(log) for _ in range(2 * PING_BATCH + 50)}
        pinger = Pinger(sessions, 60)
        pinger.start()
        timer = pinger._timer
        pinger.start()  # called for every socket that opens: still one timer
        assert pinger._timer is timer
        pinger.stop()
        pinger._tick()  # what the timer runs
        first_batch = len(log)  # the others wait for their turn on the loop
        for _ in range(3):
            await asyncio.sleep(0)
        pinger.stop()
        return first_batch, log, sessions

    first_batch, log, sessions = asyncio.run(one_tick())
    assert first_batch == PING_BATCH
    assert len(log) == len(sessions) and set(log) == sessions
