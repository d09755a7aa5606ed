from django.http import JsonResponse
from django.views.decorators.http import require_GET

from .models import Item


@require_GET
def item_list(request):
    """GET /api/items/: every item, oldest first."""
    items = list(Item.objects.values("id", "name", "created_at"))
    return JsonResponse({"items": items})
