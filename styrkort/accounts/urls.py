from django.urls import path

from styrkort.accounts import views

app_name = "accounts"
urlpatterns = [
    path("", views.profile, name="profile"),
    path("users/", views.users, name="users"),
]
