"""The ASGI application every server of the websocket benchmark runs (serve, uvicorn, daphne)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings_ws")

from django.core.asgi import get_asgi_application  # noqa: E402

django_application = get_asgi_application()

from bench.consumers import EchoConsumer, GroupConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": URLRouter(
            [
                path("ws/echo/", EchoConsumer.as_asgi()),
                path("ws/group/", GroupConsumer.as_asgi()),
            ]
        ),
    }
)
