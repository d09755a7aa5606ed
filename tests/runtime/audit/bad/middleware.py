import time


def timing(get_response):
    """Synchronous only: no async_capable, so Django adapts it on the async path."""

    def middleware(request):
        started = time.monotonic()
        response = get_response(request)
        response["X-Elapsed"] = f"{time.monotonic() - started:.3f}"
        return response

    return middleware
