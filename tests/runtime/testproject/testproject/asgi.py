"""ASGI entry point of the test project: Django's HTTP handler plus Channels websocket routes.

``manage.py serve --websockets`` and uvicorn (in the conformance test) serve this same object.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import path  # noqa: E402
from items import consumers  # noqa: E402

websocket_routes = URLRouter(
    [
        path("ws/echo/", consumers.EchoConsumer.as_asgi()),
        path("ws/broadcast/", consumers.BroadcastConsumer.as_asgi()),
        path("ws/flood/", consumers.FloodConsumer.as_asgi()),
    ]
)

application = ProtocolTypeRouter(
    {
        "http": django_application,
        # Channels' Origin check: browsers on other sites cannot open sockets with our cookies.
        "websocket": OriginValidator(websocket_routes, settings.WEBSOCKET_ALLOWED_ORIGINS),
    }
)
