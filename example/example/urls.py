from chat import views
from django.urls import include, path

urlpatterns = [
    path("", views.index),
    path("consumers/", include("hypergen_consumers.dashboard.urls")),  # The live dashboard (staff: admin / admin).
    path("", include("chat.urls")),
]
