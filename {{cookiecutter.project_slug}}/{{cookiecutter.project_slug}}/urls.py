"""URL routes. The probes and metrics are not here: the runtime serves them on the probe port."""

from django.urls import include, path

urlpatterns = [
    path("api/items/", include("{{ cookiecutter.project_slug }}.items.urls")),
]
