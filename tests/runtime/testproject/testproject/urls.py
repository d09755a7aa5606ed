from django.urls import path

from . import views

urlpatterns = [
    path("json/", views.small_json),
    path("orm/", views.one_query),
    path("items/<int:pk>/", views.item_detail),
    path("sleep/", views.sleep),
    path("cpu/", views.cpu),
    path("stream/", views.stream),
    path("file/", views.file_download),
    path("echo/", views.echo),
    path("context/", views.request_context),
    path("error/", views.error),
    path("meta/", views.meta),
    path("thread/", views.thread_name),
    path("gc/", views.garbage_collector),
    path("async/thread/", views.async_thread_name),
    path("async/json/", views.async_json),
    path("async/sleep/", views.async_sleep),
    path("async/stream/", views.async_stream),
    path("async/orm/", views.async_orm),
    path("async/echo/", views.async_echo),
    path("async/meta/", views.async_meta),
    path("async/error/", views.async_error),
    path("async/status/<int:status>/", views.async_status),
]
