"""``path("consumers/", include("hypergen_consumers.dashboard.urls"))``."""

from django.urls import path

from hypergen_consumers.dashboard import views

app_name = "hypergen_consumers_dashboard"
urlpatterns = [path("", views.dashboard, name="dashboard")]
