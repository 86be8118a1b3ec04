"""Load ``hypergen_consumers/client.js`` into liveviews that use a consumer, automatically.

When a liveview calls ``SomeConsumer.reverse()`` (to open a socket or to build a
``callback()``), a small hypergen plugin is added to the page being rendered. It puts the
client script right after hypergen's own script tag, so the page needs no extra line.
Pages that never reverse a consumer are left alone.

Under ``DEBUG = True`` the tag carries ``data-hypergen-consumers-debug`` (also when the page
loads the script itself): that is how client.js knows to show error frames as the dev
overlay. Without DEBUG nothing marks the page, and no overlay is ever shown.
"""

from __future__ import annotations

from django.conf import settings
from django.templatetags.static import static
from hypergen.context import context
from hypergen.liveview import LiveviewPlugin

from hypergen_consumers.declaring.callback_checks import CallbackCheckPlugin

__all__ = ["CLIENT_SCRIPT", "DEBUG_ATTRIBUTE", "ensure_client_script"]

CLIENT_SCRIPT = "hypergen_consumers/client.js"
_HYPERGEN_SCRIPT = "hypergen/dist/hypergen.js"
#: On the client's script tag under DEBUG: client.js shows error frames as an overlay.
DEBUG_ATTRIBUTE = "data-hypergen-consumers-debug"


class ClientScriptPlugin:
    """hypergen plugin: add ``<script src=client.js>`` after hypergen's script in the page."""

    def process_html(self, html: str) -> str:
        plain = f'<script src="{static(CLIENT_SCRIPT)}"></script>'
        ours = f'<script src="{static(CLIENT_SCRIPT)}" {DEBUG_ATTRIBUTE}></script>' if settings.DEBUG else plain
        if ours in html:
            return html
        if plain in html:
            return html.replace(plain, ours, 1)  # The page loads it itself; under DEBUG, mark it.
        hypergen_tag = f'<script src="{static(_HYPERGEN_SCRIPT)}"></script>'
        if hypergen_tag in html:
            return html.replace(hypergen_tag, hypergen_tag + ours, 1)
        return html + ours


def ensure_client_script() -> None:
    """Called by ``HypergenConsumer.reverse()``: if a liveview page is rendering, make it load the client.

    The only thing in the package that changes a page as a side effect, kept to this one
    named call: ``routing.reverse_url`` itself only builds the URL.
    """
    if "hypergen" not in context:
        return
    plugins = context.hypergen.get("plugins")
    if not isinstance(plugins, list) or not any(isinstance(p, LiveviewPlugin) for p in plugins):
        return
    if not any(isinstance(p, ClientScriptPlugin) for p in plugins):
        plugins.append(ClientScriptPlugin())
        plugins.append(CallbackCheckPlugin())  # Typos in callbacks show when the page renders.
