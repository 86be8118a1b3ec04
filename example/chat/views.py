"""The example's pages: liveviews that open consumers, and a page that pushes from the backend."""

from contextlib import contextmanager

from django.templatetags.static import static
from hypergen.imports import (
    NO_PERM_REQUIRED,
    a,
    action,
    body,
    button,
    callback,
    command,
    div,
    doctype,
    h1,
    h2,
    head,
    html,
    input_,
    liveview,
    nav,
    p,
    script,
    span,
    style,
    title,
    ul,
)

from chat.consumers import ChatRoom, increment
from hypergen_consumers import consumer_command, group_send

CSS = """
body { font-family: sans-serif; max-width: 48rem; margin: 2rem auto; }
nav a { margin-right: 1rem; }
.offline-banner { display: none; background: #fdd; padding: .5rem; }
html.hypergen-websocket-offline .offline-banner { display: block; }
"""


@contextmanager
def base_template():
    doctype()
    with html():
        with head():
            title("hypergen-consumers example")
            style(CSS)
        with body():
            # Loaded on every page so partial page loads to a consumer page work too.
            script(src=static("hypergen_consumers/client.js"))
            div("Offline: reconnecting…", class_="offline-banner")
            with nav():
                a("Chat", href=chat.reverse(room_name="lobby"))
                a("Counter", href=counter.reverse())
                a("Push from the backend", href=push.reverse())
            with div(id_="content"):
                yield


base_template.target_id = "content"


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template, autourl=False)
def index(request):
    h1("hypergen-consumers")
    p("Open a page in two tabs and watch both update.")


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template, path="chat/<slug:room_name>/")
def chat(request, room_name):
    url = ChatRoom.reverse(room_name=room_name)
    command("hypergen.websocket.open", url)
    h2("Room #", room_name)
    p(id_="chat-status")
    ul(id_="messages")
    author = input_(id_="author", placeholder="Your name", value="anonymous")
    text = input_(id_="text", placeholder="Message")
    message = {"author": author, "text": text}  # Sent as a JSON object: validated as a Message.
    button("Send", id_="send", onclick=callback(url, "send_message", message))
    button("My stats", id_="stats", onclick=callback(url, "my_stats"))
    p(id_="my-stats")


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template)
def counter(request):
    command("hypergen.websocket.open", increment.reverse())
    h2("Shared counter")
    p("Clicked ? times", id_="counter")
    button("Increment", id_="increment", onclick=callback(increment))


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template)
def push(request):
    h2("Push from the backend")
    p("These buttons call an @action; the action pushes into the lobby chat over the channel layer.")
    button("group_send a chat message", id_="push-message", onclick=callback(push_message))
    button("consumer_command an alert", id_="push-alert", onclick=callback(push_alert))
    p(id_="push-result")


@action(perm=NO_PERM_REQUIRED, target_id="push-result")
def push_message(request):
    group_send(ChatRoom.group_name(room_name="lobby"), "send_message", {"author": "server", "text": "Hello from a view!"})
    span("Sent to #lobby.")


@action(perm=NO_PERM_REQUIRED, target_id="push-result")
def push_alert(request):
    consumer_command(ChatRoom.group_name(room_name="lobby"), [["console.log", "Hello from a view!"]])
    span("Logged in every #lobby page's console.")
