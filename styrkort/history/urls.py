from django.urls import path

from styrkort.history import views

app_name = "history"
urlpatterns = [path("", views.change_log, name="log")]
