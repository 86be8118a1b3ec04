"""The client script ships as a static file and is loaded into liveviews that use a consumer."""

import sys

from django.contrib.staticfiles import finders
from django.test import Client, override_settings
from django.urls import clear_url_caches, path
from hypergen.imports import NO_PERM_REQUIRED, command, liveview, p

from hypergen_consumers import HypergenConsumer, autoconsumers, handler

HYPERGEN_JS = '<script src="/static/hypergen/dist/hypergen.js"></script>'
CLIENT_JS = '<script src="/static/hypergen_consumers/client.js"></script>'


class Live(HypergenConsumer):
    perm = NO_PERM_REQUIRED
    autourl = True

    @handler
    def post(self, request): ...


@liveview(perm=NO_PERM_REQUIRED, autourl=False)
def uses_consumer(request):
    command("hypergen.websocket.open", Live.reverse())
    p("live")


@liveview(perm=NO_PERM_REQUIRED, autourl=False)
def plain(request):
    p("plain")


class urls:
    urlpatterns = [path("live/", uses_consumer), path("plain/", plain)]


def test_the_client_script_is_a_static_file():
    found = finders.find("hypergen_consumers/client.js")
    assert found and "window.hypergen" in open(found).read()


@override_settings(ROOT_URLCONF=urls)
def test_a_liveview_that_reverses_a_consumer_loads_the_client_after_hypergen():
    clear_url_caches()
    autoconsumers(sys.modules[__name__], namespace="live")
    html = Client().get("/live/").content.decode()
    assert HYPERGEN_JS + CLIENT_JS in html
    assert html.count(CLIENT_JS) == 1
    assert '["hypergen.websocket.open","ws://testserver/ws/live/live/"]' in html


@override_settings(ROOT_URLCONF=urls)
def test_a_liveview_without_consumers_is_left_alone():
    clear_url_caches()
    html = Client().get("/plain/").content.decode()
    assert HYPERGEN_JS in html
    assert CLIENT_JS not in html


DEBUG_CLIENT_JS = '<script src="/static/hypergen_consumers/client.js" data-hypergen-consumers-debug></script>'


@override_settings(ROOT_URLCONF=urls, DEBUG=True)
def test_under_debug_the_client_script_is_marked_for_the_dev_overlay():
    clear_url_caches()
    autoconsumers(sys.modules[__name__], namespace="live")
    html = Client().get("/live/").content.decode()
    assert HYPERGEN_JS + DEBUG_CLIENT_JS in html
    assert CLIENT_JS not in html


@override_settings(ROOT_URLCONF=urls, DEBUG=True)
def test_under_debug_a_page_that_loads_the_client_itself_gets_its_tag_marked_once():
    from hypergen_consumers.declaring.client_script import ClientScriptPlugin

    page = "<head>" + HYPERGEN_JS + "</head><body>" + CLIENT_JS + "</body>"
    marked = ClientScriptPlugin().process_html(page)
    assert marked.count("hypergen_consumers/client.js") == 1
    assert DEBUG_CLIENT_JS in marked
    assert ClientScriptPlugin().process_html(marked) == marked
    with override_settings(DEBUG=False):
        assert ClientScriptPlugin().process_html(page) == page
