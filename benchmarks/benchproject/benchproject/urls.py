from bench import views
from django.urls import path

urlpatterns = [
    path("json/", views.json_view),
    path("orm/", views.orm_view),
    path("block/", views.blocking_view),
    path("cpu/", views.cpu_view),
]
