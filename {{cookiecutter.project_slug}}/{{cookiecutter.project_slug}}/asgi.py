{%- if cookiecutter.websockets == "yes" -%}
"""ASGI application: what `manage.py serve --websockets` (HURRICANE_WEBSOCKETS) hands websocket
upgrades and async views to. Plain HTTP goes to Django; websockets go through Channels' Origin
check (origins from ALLOWED_HOSTS: other sites cannot open sockets with a user's cookies) to the
routes of the apps. See docs/websockets.md."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault(
    "DJANGO_SETTINGS_MODULE",
    "{{ cookiecutter.project_slug }}.settings.production",
)

# Django first: the consumers import models, which need the app registry ready.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from {{ cookiecutter.project_slug }}.items.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
{%- else -%}
"""ASGI entry point, for an ASGI server should the service ever need one."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault(
    "DJANGO_SETTINGS_MODULE",
    "{{ cookiecutter.project_slug }}.settings.production",
)

application = get_asgi_application()
{%- endif %}
