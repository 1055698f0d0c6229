from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from styrkort.api import api

urlpatterns = [
    path("", include("styrkort.web.urls")),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", include("styrkort.accounts.urls")),
    path("history/", include("styrkort.history.urls")),
    path("jobs/", include("styrkort.jobs.urls")),
    path("organisation/", include("styrkort.organisation.urls")),
    path("extracts/", include("styrkort.extracts.urls")),
    path("indicators/", include("styrkort.indicators.urls")),
    path("grants/", include("styrkort.grants.urls")),
    path("api/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
