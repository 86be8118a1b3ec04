"""Load ``hypergen_consumers/client.js`` into liveviews that use a consumer, automatically.

When a liveview calls ``SomeConsumer.reverse()`` (to open a socket or to build a
``callback()``), a small hypergen plugin is added to the page being rendered. It puts the
client script right after hypergen's own script tag, so the page needs no extra line.
Pages that never reverse a consumer are left alone.
"""

from __future__ import annotations

from django.templatetags.static import static
from hypergen.context import context
from hypergen.liveview import LiveviewPlugin

__all__ = ["CLIENT_SCRIPT", "ensure_client_script"]

CLIENT_SCRIPT = "hypergen_consumers/client.js"
_HYPERGEN_SCRIPT = "hypergen/dist/hypergen.js"


class ClientScriptPlugin:
    """hypergen plugin: add ``<script src=client.js>`` after hypergen's script in the page."""

    def process_html(self, html: str) -> str:
        ours = f'<script src="{static(CLIENT_SCRIPT)}"></script>'
        if ours in html:
            return html
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
        from .callback_checks import CallbackCheckPlugin

        plugins.append(ClientScriptPlugin())
        plugins.append(CallbackCheckPlugin())  # Typos in callbacks show when the page renders.
