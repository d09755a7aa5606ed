"""Settings of the websocket benchmark: the same project plus Channels and an async view.

A separate URLconf keeps the async view out of the sync throughput benchmark, which must keep
measuring the pure sync path.
"""

import os

from .settings import *  # noqa: F403

ROOT_URLCONF = "benchproject.urls_ws"
ASGI_APPLICATION = "benchproject.asgi.application"
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")]},
    }
}
