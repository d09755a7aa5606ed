"""The four views both servers run: small JSON, one ORM query, blocking sleep, CPU work."""

import time

from django.http import JsonResponse

from .models import Item

BLOCK_SECONDS = 0.2
CPU_LOOPS = 200_000  # about 10-20 ms of pure Python on the CI machines


def json_view(request):
    """A small JSON answer: the cost is the server and Django's request path."""
    return JsonResponse({"message": "hello", "numbers": [1, 2, 3]})


def orm_view(request):
    """Exactly one database query."""
    items = list(Item.objects.order_by("id").values("id", "name", "price")[:10])
    return JsonResponse({"items": items})


def blocking_view(request):
    """Sleeps 200 ms (or ``?ms=``) without using the CPU, like a slow upstream call."""
    seconds = int(request.GET.get("ms", BLOCK_SECONDS * 1000)) / 1000
    time.sleep(seconds)
    return JsonResponse({"slept": seconds})


def cpu_view(request):
    """Holds the GIL doing arithmetic (``?loops=`` to change the amount)."""
    loops = int(request.GET.get("loops", CPU_LOOPS))
    total = 0
    for number in range(loops):
        total += number * number
    return JsonResponse({"total": total})


async def async_hello_view(request):
    """The async twin of ``json_view``: served on the event loop through ASGI."""
    return JsonResponse({"message": "hello", "numbers": [1, 2, 3]})
