"""HTTP routes of the test project: the metrics scrape view and the dashboard, as docs/deployment.rst shows them."""

from django.http import HttpResponse
from django.urls import include, path
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


def metrics(request):
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)


urlpatterns = [path("metrics/", metrics), path("consumers/", include("hypergen_consumers.dashboard.urls"))]
