"""Websocket routes of the items app, mounted by asgi.py behind the Origin check."""

from django.urls import path

from .consumers import ItemFeedConsumer

websocket_urlpatterns = [
    path("ws/items/", ItemFeedConsumer.as_asgi()),
]
