"""Websocket consumers of the test project (Channels), driven by what the client sends."""

import asyncio

from channels.generic.websocket import AsyncWebsocketConsumer


class EchoConsumer(AsyncWebsocketConsumer):
    """Echoes text and binary; ``?reject`` closes before accepting, ``?hang`` never decides;
    knows subprotocol chat.v2.

    Text commands: ``close:<code>`` closes with that code, ``sleep:<seconds>`` waits before
    echoing the next message.
    """

    async def connect(self):
        if b"reject" in self.scope["query_string"]:
            await self.close()
            return
        if b"hang" in self.scope["query_string"]:
            await asyncio.sleep(3600)  # neither accepts nor refuses
        if "chat.v2" in self.scope["subprotocols"]:
            await self.accept(subprotocol="chat.v2")
        else:
            await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is not None and text_data.startswith("close:"):
            await self.close(code=int(text_data.partition(":")[2]))
            return
        if text_data is not None and text_data.startswith("sleep:"):
            await asyncio.sleep(float(text_data.partition(":")[2]))
            return
        await self.send(text_data=text_data, bytes_data=bytes_data)

    async def disconnect(self, code):
        print(f"echo consumer disconnected with code {code}", flush=True)


class BroadcastConsumer(AsyncWebsocketConsumer):
    """Every text message goes to every client of the group ``?group=NAME``, on any server."""

    async def connect(self):
        query = self.scope["query_string"].decode()
        self.group = query.partition("group=")[2] or "broadcast"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        await self.channel_layer.group_send(
            self.group, {"type": "broadcast.message", "text": text_data}
        )

    async def broadcast_message(self, event):
        await self.send(text_data=event["text"])


class FloodConsumer(AsyncWebsocketConsumer):
    """On ``<count>:<size>`` sends ``count`` binary messages of ``size`` bytes as fast as it may."""

    async def connect(self):
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        count, _, size = text_data.partition(":")
        payload = b"x" * int(size)
        for _ in range(int(count)):
            await self.send(bytes_data=payload)
