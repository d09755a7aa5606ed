# Appended to badsite/urls.py: an async view puts requests on the async path (hurricane.W013).
from django.http import JsonResponse  # noqa: E402


async def status(request):
    return JsonResponse({"status": "ok"})


urlpatterns += [path("status/", status)]  # noqa: F821
