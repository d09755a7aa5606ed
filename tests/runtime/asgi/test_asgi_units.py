"""Small decisions of the ASGI side, without a server."""

from django.urls import include, path
from django.views import View

from hurricane_runtime.server.asgi import has_async_views, split_target
from hurricane_runtime.server.websocket import close_code_label


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
