from django.urls import path

from styrkort.organisation import import_urls, views

app_name = "organisation"
urlpatterns = [
    path("overview/", views.overview, name="overview"),
    path("units/", views.unit_list, name="unit_list"),
    path("units/<int:unit_id>/", views.unit_detail, name="unit_detail"),
    path("units/<int:unit_id>/history/", views.unit_history, name="unit_history"),
    path("units/<int:unit_id>/edit/", views.unit_edit, name="unit_edit"),
    path("units/<int:unit_id>/staffing/", views.staffing_edit, name="staffing_edit"),
    path("providers/", views.provider_list, name="provider_list"),
]
urlpatterns += import_urls.urlpatterns
