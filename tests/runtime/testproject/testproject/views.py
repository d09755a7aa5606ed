"""Views that exercise the runtime: fast, database, blocking, CPU-bound, streaming, files."""

import asyncio
import gc
import hashlib
import io
import threading
import time

from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from items.models import Item

from hurricane_runtime import context


def small_json(request):
    return JsonResponse({"hello": "world", "answer": 42})


def one_query(request):
    item = Item.objects.order_by("pk").first()
    return JsonResponse({"item": item.name if item else None})


def item_detail(request, pk):
    return JsonResponse({"pk": pk})


def sleep(request):
    seconds = float(request.GET.get("seconds", "0.2"))
    time.sleep(seconds)
    return JsonResponse({"slept": seconds})


def cpu(request):
    rounds = int(request.GET.get("rounds", "200000"))
    total = 0
    for number in range(rounds):
        total += number * number % 7
    return JsonResponse({"total": total})


def stream(request):
    chunks = int(request.GET.get("chunks", "3"))
    delay = float(request.GET.get("delay", "0.5"))

    def produce():
        for index in range(chunks):
            yield f"chunk {index}\n".encode()
            time.sleep(delay)

    return StreamingHttpResponse(produce(), content_type="text/plain")


def file_download(request):
    size = int(request.GET.get("size", "1000000"))
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    return FileResponse(io.BytesIO(data), content_type="application/octet-stream")


@csrf_exempt
def echo(request):
    body = request.body
    response = HttpResponse(body, content_type="application/octet-stream")
    response["X-Body-SHA256"] = hashlib.sha256(body).hexdigest()
    return response


def request_context(request):
    return JsonResponse(
        {"request_id": context.request_id.get(), "traceparent": context.traceparent.get()}
    )


@csrf_exempt
def meta(request):
    """What Django was handed: the request-target parts, Host, body and header keys."""
    return JsonResponse(
        {
            "method": request.method,
            "path_info": request.META["PATH_INFO"],
            "query_string": request.META["QUERY_STRING"],
            "host": request.META.get("HTTP_HOST"),
            "content_type": request.META.get("CONTENT_TYPE"),
            "body": request.body.decode("latin-1"),
            "http_keys": sorted(key for key in request.META if key.startswith("HTTP_")),
        }
    )


def error(request):
    raise RuntimeError("this view always fails")


def thread_name(request):
    return JsonResponse({"thread": threading.current_thread().name})


def garbage_collector(request):
    """Objects in the collector's permanent generation (frozen at the end of start-up)."""
    return JsonResponse({"frozen": gc.get_freeze_count()})


# -- async views: served on the event loop through ASGI ---------------------------------------


async def async_thread_name(request):
    return JsonResponse({"thread": threading.current_thread().name})


async def async_json(request):
    return JsonResponse({"hello": "async", "request_id": context.request_id.get()})


async def async_sleep(request):
    seconds = float(request.GET.get("seconds", "1"))
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        print(f"async view cancelled: {request.GET.get('tag', '')}", flush=True)
        raise
    return JsonResponse({"slept": seconds})


async def async_stream(request):
    chunks = int(request.GET.get("chunks", "3"))
    delay = float(request.GET.get("delay", "0.2"))
    tag = request.GET.get("tag", "")
    padding = b"x" * int(request.GET.get("size", "0"))

    async def produce():
        sent = 0
        try:
            for index in range(chunks):
                yield f"chunk {index}\n".encode() + padding
                sent += 1
                await asyncio.sleep(delay)
        except (asyncio.CancelledError, GeneratorExit):
            print(f"async stream cancelled after {sent} chunks: {tag}", flush=True)
            raise

    return StreamingHttpResponse(produce(), content_type="text/plain")


async def async_orm(request):
    item = await Item.objects.order_by("pk").afirst()
    count = await Item.objects.acount()
    return JsonResponse({"item": item.name if item else None, "count": count})


@csrf_exempt
async def async_echo(request):
    body = request.body
    response = HttpResponse(body, content_type="application/octet-stream")
    response["X-Body-SHA256"] = hashlib.sha256(body).hexdigest()
    return response


@csrf_exempt
async def async_meta(request):
    """``meta`` for an async view: what the ASGI scope handed Django."""
    return meta(request)


async def async_error(request):
    raise RuntimeError("this async view always fails")


async def async_status(request, status):
    response = HttpResponse(b"" if status in (204, 304) else b"status\n", status=status)
    response["X-Custom"] = "yes"
    return response
