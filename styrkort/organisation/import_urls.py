"""URL patterns of the import and export pages, added to the organisation namespace by
styrkort/organisation/urls.py."""

from django.urls import path

from styrkort.organisation import import_views

urlpatterns = [
    path("import/", import_views.import_start, name="import"),
    path("import/samples/<str:kind>.csv", import_views.import_sample, name="import_sample"),
    path("import/<uuid:job_id>/", import_views.import_review, name="import_review"),
    path("import/<uuid:job_id>/confirm/", import_views.import_confirm, name="import_confirm"),
    path("import/<uuid:job_id>/cancel/", import_views.import_cancel, name="import_cancel"),
    path("import/<uuid:job_id>/result/", import_views.import_result, name="import_result"),
    path("export/", import_views.export, name="export"),
]
