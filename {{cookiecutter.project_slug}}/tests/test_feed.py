"""The live feed (/ws/items/) with Channels' communicator: no server, the in-memory channel
layer of the test settings. tests/test_feed_serve.py runs the same path through a real server
and Redis."""

import logging

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from {{ cookiecutter.project_slug }}.asgi import application
from {{ cookiecutter.project_slug }}.items import receivers
from {{ cookiecutter.project_slug }}.items.models import Item
from {{ cookiecutter.project_slug }}.signals import suspend_signals

pytestmark = pytest.mark.django_db

ORIGIN = (b"origin", b"http://testserver")


def feed_client(origin=ORIGIN):
    return WebsocketCommunicator(application, "/ws/items/", headers=[origin])


@pytest.fixture
def create_item(django_capture_on_commit_callbacks):
    """Create an Item as a view would and commit it (the feed hears of committed items only),
    from a test running on the event loop."""

    @database_sync_to_async
    def create(name):
        with django_capture_on_commit_callbacks(execute=True):
            return Item.objects.create(name=name)

    return create


def test_every_client_receives_every_new_item(create_item):
    async def scenario():
        first, second = feed_client(), feed_client()
        assert (await first.connect())[0]
        assert (await second.connect())[0]
        item = await create_item("fresh")
        received = [await first.receive_json_from(), await second.receive_json_from()]
        await first.disconnect()
        await second.disconnect()
        return item, received

    item, received = async_to_sync(scenario)()

    expected = {
        "type": "item.created",
        "item": {"id": item.pk, "name": "fresh", "created_at": item.created_at.isoformat()},
    }
    assert received == [expected, expected]


def test_sockets_from_other_sites_are_refused():
    async def scenario():
        foreign = feed_client((b"origin", b"https://evil.example"))
        without_origin = WebsocketCommunicator(application, "/ws/items/")
        return (await foreign.connect())[0], (await without_origin.connect())[0]

    assert async_to_sync(scenario)() == (False, False)


def test_changes_to_existing_items_are_not_sent(create_item):
    item = Item.objects.create(name="old")

    async def scenario():
        client = feed_client()
        await client.connect()
        item.name = "renamed"
        await database_sync_to_async(item.save)()
        quiet = await client.receive_nothing(timeout=0.3)
        await client.disconnect()
        return quiet

    assert async_to_sync(scenario)()


@suspend_signals(receivers.broadcast_item)
def test_a_suspended_broadcast_sends_nothing(create_item):
    async def scenario():
        client = feed_client()
        await client.connect()
        await create_item("quiet")
        quiet = await client.receive_nothing(timeout=0.3)
        await client.disconnect()
        return quiet

    assert async_to_sync(scenario)()
    assert Item.objects.filter(name="quiet").exists()


def test_what_clients_send_is_ignored(create_item):
    async def scenario():
        client = feed_client()
        await client.connect()
        await client.send_to(text_data="not json {")
        await client.send_to(bytes_data=b"\x00\x01")
        quiet = await client.receive_nothing(timeout=0.3)
        await create_item("still listening")  # the socket is still open and subscribed
        message = await client.receive_json_from()
        await client.disconnect()
        return quiet, message

    quiet, message = async_to_sync(scenario)()

    assert quiet
    assert message["item"]["name"] == "still listening"


def test_an_unreachable_redis_never_fails_the_write(caplog, django_capture_on_commit_callbacks):
    # A port nothing listens on: Redis refuses at once.
    layer = {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:9/0"]},
    }
    caplog.set_level(logging.WARNING, logger=receivers.logger.name)

    with (
        override_settings(CHANNEL_LAYERS={"default": layer}),
        django_capture_on_commit_callbacks(execute=True),
    ):
        item = Item.objects.create(name="saved anyway")

    assert Item.objects.filter(pk=item.pk).exists()
    assert any(
        f"item {item.pk} not sent to the live feed" in record.getMessage()
        for record in caplog.records
    )
