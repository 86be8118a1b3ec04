"""``path("consumers/", include("hypergen_consumers.dashboard.urls"))``."""

from django.urls import path

from . import views

app_name = "hypergen_consumers_dashboard"
urlpatterns = [path("", views.dashboard, name="dashboard")]
