from django.urls import path

from styrkort.jobs import views

app_name = "jobs"
urlpatterns = [path("<uuid:job_id>/progress/", views.job_progress, name="progress")]
