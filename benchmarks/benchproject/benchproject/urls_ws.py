from bench import views
from django.urls import path

from .urls import urlpatterns as sync_patterns

urlpatterns = [*sync_patterns, path("async/hello/", views.async_hello_view)]
