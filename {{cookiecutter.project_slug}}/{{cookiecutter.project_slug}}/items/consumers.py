"""The live feed of items: a client connected to /ws/items/ receives every Item created, by any
pod, as JSON (`{"type": "item.created", "item": {...}}`).

`receivers.broadcast_item` sends each new item to the group `FEED_GROUP` through the channel
layer (Redis pub/sub in production, so every pod hears it); each socket of this consumer is a
member of that group. The feed is a notification: a client that reconnects fetches what it
missed from GET /api/items/ (pub/sub keeps nothing for absent listeners).
"""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

FEED_GROUP = "items"


class ItemFeedConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        await self.channel_layer.group_add(FEED_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(FEED_GROUP, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """The feed is one-way: what clients send is ignored (not even parsed)."""

    async def item_created(self, event):
        """A group message of type ``item.created``: pass the item on to the client."""
        await self.send_json({"type": "item.created", "item": event["item"]})
