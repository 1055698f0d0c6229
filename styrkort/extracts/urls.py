from django.urls import path

from styrkort.extracts import views

app_name = "extracts"
urlpatterns = [
    path("", views.version_list, name="list"),
    path("upload/", views.upload, name="upload"),
    path("uploads/<uuid:upload_id>/", views.upload_status, name="upload_status"),
    path("uploads/<uuid:upload_id>/errors.csv", views.error_report, name="error_report"),
    path("versions/<int:version_id>/purge/", views.purge, name="purge"),
]
