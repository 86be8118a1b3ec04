"""The example's pages: liveviews that open consumers, and a page that pushes from the backend."""

import inspect
from contextlib import contextmanager

from django.contrib.auth import authenticate, login
from django.contrib.auth.models import User
from django.http import HttpResponseRedirect
from django.templatetags.static import static
from django.utils.http import url_has_allowed_host_and_scheme
from hypergen.imports import (
    NO_PERM_REQUIRED,
    a,
    action,
    body,
    button,
    callback,
    code,
    command,
    div,
    doctype,
    h1,
    h2,
    hypergen as hypergen_html,
    head,
    html,
    input_,
    liveview,
    nav,
    p,
    pre,
    script,
    span,
    style,
    title,
    li,
    ul,
)

from chat import consumers
from chat.consumers import ChatRoom, Mistakes, PokerTable, StaffRoom, increment
from hypergen_consumers import consumer_command, user_command

CSS = """
body { font-family: sans-serif; max-width: 48rem; margin: 2rem auto; }
nav a { margin-right: 1rem; }
.offline-banner { display: none; background: #fdd; padding: .5rem; }
html.hypergen-websocket-offline .offline-banner { display: block; }
pre { background: #f6f6f6; padding: .5rem; overflow-x: auto; font-size: .8rem; }
"""


def show_source(*objects):
    """Like hypergen's example site: each page shows the code that makes it."""
    h2("Source")
    for obj in objects:
        pre(code(inspect.getsource(obj)))


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
            div(id_="notices")  # user_command() pushes private notices here, on any page with a socket.
            with nav():
                a("Chat", href=chat.reverse(room_name="lobby"))
                a("Planning poker", href=poker.reverse(table="team"))
                a("Counter", href=counter.reverse())
                a("Push from the backend", href=push.reverse())
                a("Staff room (login)", href=staff.reverse())
                a("Private notice", href=notice.reverse())
                a("Dev overlay", href=mistakes.reverse())
                a("Dashboard (admin)", href="/consumers/", partial=False)
            with div(id_="content"):
                yield


base_template.target_id = "content"


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template, autourl=False)
def index(request):
    h1("hypergen-consumers")
    p("Open a page in two tabs and watch both update. What each page shows:")
    with ul(id_="demos"):
        li(a("Chat", href=chat.reverse(room_name="lobby")), ": typed handlers (a pydantic model), broadcast to "
           "the room, who is here (presence), a page that was away catches up.")
        li(a("Counter", href=counter.reverse()), ": a @consumer function, the same count on every page.")
        li(a("Push from the backend", href=push.reverse()), ": group_send and consumer_command from a view.")
        li(a("Private notice", href=notice.reverse()), ": user_command reaches every page of one user.")
        li(a("Staff room", href=staff.reverse()), ": a consumer perm; anyone else is refused at the handshake.")
        li(a("Dev overlay", href=mistakes.reverse()), ": under DEBUG, error frames show on the page.")
        li(a("Dashboard", href="/consumers/"), ": every process's sockets, live, for staff (admin / admin).")


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template, path="chat/<slug:room_name>/")
def chat(request, room_name):
    url = ChatRoom.reverse(room_name=room_name)
    command("hypergen.websocket.open", url)
    h2("Room #", room_name)
    h2("Online")
    div(id_="online")  # ChatRoom.on_presence renders who's online here.
    p(id_="chat-status")
    ul(id_="messages")
    p(id_="typing")
    author = input_(id_="author", placeholder="Your name", value=request.user.get_username() or "anonymous")
    text = input_(id_="text", placeholder="Message", oninput=callback(url, "typing", debounce=200))
    message = {"author": author, "text": text}  # Sent as a JSON object: validated as a Message.
    # ChatRoom.callback() is hypergen's callback(url, "send_message", message), checked as the page
    # renders (a typo in the handler or a wrong number of args fails here, not on click).
    button("Send", id_="send", onclick=ChatRoom.callback(ChatRoom.send_message, message, room_name=room_name))
    button("My stats", id_="stats", onclick=ChatRoom.callback("my_stats", room_name=room_name))
    p(id_="my-stats")
    show_source(chat, consumers.Message, ChatRoom)


# Keyboard shortcuts that talk to the server without a hypergen callback: push() returns a
# Promise that resolves once the server ran the vote (its reply already applied), or rejects
# with the server's error ({code, message, errors}) for that very keypress.
POKER_KEYS = """
if (!window.pokerKeys) {
  window.pokerKeys = true;
  document.addEventListener("keydown", function (event) {
    var table = document.getElementById("poker");
    if (!table || !/^[0-9]$/.test(event.key) || event.target.tagName === "INPUT") return;
    var status = document.getElementById("vote-status");
    status.textContent = "sending " + event.key + "…";
    hypergen.websocket.pushWith({timeout: 5000}, table.dataset.url, "vote", Number(event.key)).then(
      function () { status.textContent = "vote " + event.key + " counted"; },
      function (error) { status.textContent = "vote " + event.key + " refused: " + error.code; }
    );
  });
}
"""


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template, path="poker/<slug:table>/")
def poker(request, table):
    url = PokerTable.reverse(table=table)
    command("hypergen.websocket.open", url)
    h2("Planning poker at table ", table)
    p("Press 1, 2, 3, 5 or 8 to vote (any other digit shows the server's refusal). Open the page in a "
      "second tab: it sees that you voted, not what, until someone reveals.")
    div(id_="poker", data_url=url)
    h2("Players")
    div(id_="players")  # PokerTable.on_presence renders here (presence_target_id).
    p(id_="my-vote")
    p(id_="vote-status")
    button("Reveal", id_="reveal", onclick=PokerTable.callback("reveal", table=table))
    button("New round", id_="new-round", onclick=PokerTable.callback("new_round", table=table))
    p(id_="poker-result")
    script(POKER_KEYS)
    show_source(poker, PokerTable)


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template)
def counter(request):
    command("hypergen.websocket.open", increment.reverse())
    h2("Shared counter")
    p("Clicked ? times", id_="counter")
    button("Increment", id_="increment", onclick=callback(increment))
    show_source(counter, increment)


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template)
def push(request):
    h2("Push from the backend")
    p("These buttons call an @action; the action pushes into the lobby chat over the channel layer.")
    button("ChatRoom.group_send a chat message", id_="push-message", onclick=callback(push_message))
    button("consumer_command an alert", id_="push-alert", onclick=callback(push_alert))
    button("consumer_command news to every room", id_="push-news", onclick=callback(push_news))
    p(id_="push-result")
    show_source(push, push_message, push_alert, push_news)


@action(perm=NO_PERM_REQUIRED, target_id="push-result")
def push_message(request):
    # The checked form: a typo in the handler's name or a bad message raises here, in the view.
    ChatRoom.group_send("send_message", {"author": "server", "text": "Hello from a view!"}, room_name="lobby")
    span("Sent to #lobby.")


@action(perm=NO_PERM_REQUIRED, target_id="push-result")
def push_alert(request):
    consumer_command(ChatRoom.group_name(room_name="lobby"), [["console.log", "Hello from a view!"]])
    span("Logged in every #lobby page's console.")


NEWS = {"count": 0}


@action(perm=NO_PERM_REQUIRED, target_id="push-result")
def push_news(request):
    """ChatRoom lists "chat-news" in its groups: every room gets it, and a page that was away
    gets it after reconnecting, like its room's own messages."""
    NEWS["count"] += 1
    item = hypergen_html(lambda: li("news ", NEWS["count"]))
    consumer_command("chat-news", [["hypergen.append", "messages", item]])
    span("Sent news ", NEWS["count"], " to every room.")


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template)
def notice(request):
    h2("Private notice")
    p("Pushes a notice to every open page of one user (log in as demo or friend in another browser "
      "and open the chat there), and to no one else.")
    username = input_(id_="notice-user", value="friend")
    text = input_(id_="notice-text", value="Psst!")
    button("Send privately", id_="send-notice", onclick=callback(send_notice, username, text))
    p(id_="notice-result")
    show_source(notice, send_notice)


@action(perm=NO_PERM_REQUIRED, target_id="notice-result")
def send_notice(request, username, text):
    user = User.objects.filter(username=username).first()
    if user is None:
        span("No user ", username, ".")
        return
    sender = request.user.get_username() or "anonymous"
    user_command(user, [["hypergen.append", "notices", hypergen_html(lambda: p(sender, " says: ", text, class_="notice"))]])
    span("Sent to ", username, "'s open pages.")


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template)
def mistakes(request):
    command("hypergen.websocket.open", Mistakes.reverse())
    h2("Dev overlay")
    p("With DEBUG = True, an error frame from the server shows as a panel on the page (dismiss it "
      "with x or Escape); with DEBUG = False only the console and the hypergen:websocket:error "
      "event see it.")
    button("Count to 3", id_="count-ok", onclick=Mistakes.callback("count_to", 3))
    button("Count to 99 (validation_error)", id_="count-bad", onclick=Mistakes.callback("count_to", 99))
    button("A handler that raises (handler_error)", id_="explode", onclick=Mistakes.callback("explode"))
    p(id_="mistake-result")
    show_source(mistakes, Mistakes)


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template, path="login/")
def login_page(request):
    h2("Log in")
    p("Demo accounts: demo / demo (the staff room), friend / friend, admin / admin (the dashboard).")
    username = input_(id_="username", value="demo")
    password = input_(id_="password", type_="password", value="demo")
    button("Log in", id_="login", onclick=callback(do_login, username, password, request.GET.get("next", "")))
    p(id_="login-result")


@action(perm=NO_PERM_REQUIRED, target_id="login-result")
def do_login(request, username, password, next_url=""):
    user = authenticate(request, username=username, password=password)
    if user is None:
        span("Wrong username or password.")
        return None
    login(request, user)
    if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return HttpResponseRedirect(next_url)
    return HttpResponseRedirect(staff.reverse())


@liveview(perm="auth.view_user", base_template=base_template, login_url="/login/")
def staff(request):
    url = StaffRoom.reverse()
    command("hypergen.websocket.open", url)
    h2("Staff room")
    p("Only users with the auth.view_user permission can open this socket; anyone else is refused at the handshake.")
    text = input_(id_="announcement", placeholder="Announcement")
    button("Announce", id_="announce", onclick=callback(url, "announce", text))
    p(id_="staff-log")
    show_source(staff, StaffRoom)
