from django.urls import path

from styrkort.indicators import views

app_name = "indicators"
urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("compute/", views.compute, name="compute"),
    path("computing/", views.run_status, name="run_status"),
    path("units/<int:unit_id>/", views.unit, name="unit"),
    path("<str:code>/", views.detail, name="detail"),
    path("<str:code>/download/", views.download, name="download"),
]
