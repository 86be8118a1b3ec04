from django.urls import include, path

from chat import views

urlpatterns = [path("", views.index), path("", include("chat.urls"))]
