import pytest

from {{ cookiecutter.project_slug }}.items.models import Item

pytestmark = pytest.mark.django_db


def test_item_list_is_empty_json_at_first(client):
    response = client.get("/api/items/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"items": []}


def test_item_list_shows_items_oldest_first(client):
    first = Item.objects.create(name="first")
    second = Item.objects.create(name="second")

    items = client.get("/api/items/").json()["items"]

    assert [item["id"] for item in items] == [first.pk, second.pk]
    assert [item["name"] for item in items] == ["first", "second"]
    assert all(item["created_at"] for item in items)


def test_item_list_refuses_writes(client):
    assert client.post("/api/items/", {"name": "x"}).status_code == 405
