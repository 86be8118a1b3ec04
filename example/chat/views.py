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
    aside,
    body,
    button,
    callback,
    code,
    command,
    context,
    details,
    div,
    doctype,
    h1,
    h2,
    h3,
    head,
    html,
    input_,
    kbd,
    li,
    link,
    liveview,
    meta,
    nav,
    p,
    pre,
    script,
    section,
    span,
    summary,
    title,
    ul,
)
from hypergen.imports import (
    hypergen as hypergen_html,
)

from chat import consumers
from chat.consumers import ChatRoom, Mistakes, PokerTable, StaffRoom, increment
from hypergen_consumers import consumer_command, user_command


def show_source(*objects):
    """Like hypergen's example site: each page shows the code that makes it."""
    with details(class_="source"):
        summary("The code of this page")
        for obj in objects:
            pre(code(inspect.getsource(obj)))


@contextmanager
def base_template():
    doctype()
    with html():
        with head():
            meta(charset="utf-8")
            meta(name="viewport", content="width=device-width, initial-scale=1")
            title("hypergen-consumers example")
            link(static("chat/site.css"))  # example/chat/static/chat/site.css: the whole look.
        with body():
            # Loaded on every page so partial page loads to a consumer page work too.
            script(src=static("hypergen_consumers/client.js"))
            div("Offline: reconnecting…", class_="offline-banner")  # Shown while <html> has hypergen-websocket-offline.
            div(id_="notices")  # user_command() pushes private notices here, on any page with a socket.
            with nav(class_="site-nav"):
                a("hypergen-consumers", href="/", class_="brand")
                a("Chat", href=chat.reverse(room_name="lobby"))
                a("Poker", href=poker.reverse(table="team"))
                a("Counter", href=counter.reverse())
                a("Push", href=push.reverse())
                a("Notice", href=notice.reverse())
                a("Staff room", href=staff.reverse())
                a("Dev overlay", href=mistakes.reverse())
                who_is_logged_in(context.request.user)
            with div(id_="content"):
                yield


def who_is_logged_in(user):
    """The nav's right end: who you are, and the dashboard for staff (admin / admin)."""
    with span(class_="who"):
        if not user.is_authenticated:
            span("anonymous")
            a("Log in", href=login_page.reverse())
            return
        span(user.get_username())
        if user.is_staff:
            a("Dashboard", href="/consumers/", class_="staff", partial=False)


base_template.target_id = "content"


DEMOS = [
    # (title, the page, what it shows, what it uses)
    (
        "Chat",
        lambda: chat.reverse(room_name="lobby"),
        (
            "Everyone in the room sees each message; who is here updates as tabs open and close; a page "
            "that was away catches up on what it missed."
        ),
        "typed @handler (a pydantic model), presence, replay",
    ),
    (
        "Planning poker",
        lambda: poker.reverse(table="team"),
        "Vote with a key: the others see that you voted, not what, until someone reveals.",
        "push() from JavaScript, presence metas, rate limits",
    ),
    ("Counter", lambda: counter.reverse(), "One count shared by every open page.", "a @consumer function"),
    (
        "Push from the backend",
        lambda: push.reverse(),
        "A plain view sends into the chat rooms over the channel layer.",
        "group_send, consumer_command",
    ),
    (
        "Private notice",
        lambda: notice.reverse(),
        "A notice reaches every open page of one user, and no one else's.",
        "user_command",
    ),
    (
        "Staff room",
        lambda: staff.reverse(),
        "Only users with a permission may open the socket; anyone else is refused at the handshake.",
        "perm on a consumer (log in as demo / demo)",
    ),
    (
        "Dev overlay",
        lambda: mistakes.reverse(),
        "Under DEBUG, an error frame from the server shows on the page, dismissible.",
        "validation_error, handler_error",
    ),
    (
        "Dashboard",
        lambda: "/consumers/",
        "Every process's sockets, live: connections, frames/s, errors, groups, the event log, operations.",
        "staff only: log in as admin / admin",
    ),
]


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template, autourl=False)
def index(request):
    h1("hypergen-consumers")
    p(
        "Real-time pages for Django in pure Python. Open a page in two tabs (or two browsers) and watch "
        "both update. What each page shows:",
        class_="lead",
    )
    with div(id_="demos", class_="cards"):
        for name, url, shows, uses in DEMOS:
            with a(href=url(), class_="card", partial=name != "Dashboard"):
                h3(name)
                p(shows)
                p(uses, class_="uses")


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template, path="chat/<slug:room_name>/")
def chat(request, room_name):
    url = ChatRoom.reverse(room_name=room_name)
    command("hypergen.websocket.open", url)
    h1("Room #", room_name)
    p(
        "Open this room in a second browser (or log in as friend / friend there): messages, who is here "
        "and who is typing show on both.",
        class_="lead",
    )
    with div(class_="chat"):
        with section(class_="card"):
            p(id_="chat-status")
            ul(id_="messages")
            p(id_="typing")
            with div(class_="composer"):
                author = input_(id_="author", placeholder="Your name", value=request.user.get_username() or "anonymous")
                text = input_(id_="text", placeholder="Message", oninput=callback(url, "typing", debounce=200))
            message = {"author": author, "text": text}  # Sent as a JSON object: validated as a Message.
            with div(class_="row"):
                # ChatRoom.callback() is hypergen's callback(url, "send_message", message), checked as the
                # page renders (a typo in the handler or a wrong number of args fails here, not on click).
                button(
                    "Send", id_="send", onclick=ChatRoom.callback(ChatRoom.send_message, message, room_name=room_name)
                )
                button(
                    "My stats",
                    id_="stats",
                    class_="secondary",
                    onclick=ChatRoom.callback("my_stats", room_name=room_name),
                )
            p(id_="my-stats")
        with aside(class_="card side"):
            h2("Who is here")
            div(id_="online")  # ChatRoom.on_presence renders who's online here.
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
    h1("Planning poker at table ", table)
    p(
        "Press ",
        kbd("1"),
        ", ",
        kbd("2"),
        ", ",
        kbd("3"),
        ", ",
        kbd("5"),
        " or ",
        kbd("8"),
        " to vote (any other "
        "digit shows the server's refusal). Open the page in a second tab: it sees that you voted, not what, "
        "until someone reveals.",
        class_="lead",
    )
    div(id_="poker", data_url=url)
    with div(class_="chat"):
        with section(class_="card"):
            p(id_="my-vote")
            p(id_="vote-status", class_="result")
            with div(class_="row"):
                button("Reveal", id_="reveal", onclick=PokerTable.callback("reveal", table=table))
                button(
                    "New round",
                    id_="new-round",
                    class_="secondary",
                    onclick=PokerTable.callback("new_round", table=table),
                )
            p(id_="poker-result")
        with aside(class_="card side"):
            h2("Players")
            div(id_="players")  # PokerTable.on_presence renders here (presence_target_id).
    script(POKER_KEYS)
    show_source(poker, PokerTable)


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template)
def counter(request):
    command("hypergen.websocket.open", increment.reverse())
    h1("Shared counter")
    p("One count for every open page: click here, watch another tab.", class_="lead")
    with section(class_="card"):
        p("Clicked ? times", id_="counter")
        button("Increment", id_="increment", onclick=callback(increment))
    show_source(counter, increment)


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template)
def push(request):
    h1("Push from the backend")
    p(
        "These buttons call an @action; the action pushes into the lobby chat over the channel layer "
        "(open the chat in another tab to see it arrive).",
        class_="lead",
    )
    with section(class_="card"):
        with div(class_="row"):
            button("ChatRoom.group_send a chat message", id_="push-message", onclick=callback(push_message))
            button("consumer_command an alert", id_="push-alert", onclick=callback(push_alert))
            button("consumer_command news to every room", id_="push-news", onclick=callback(push_news))
        p(id_="push-result", class_="result")
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
    h1("Private notice")
    p(
        "Pushes a notice to every open page of one user (log in as demo or friend in another browser "
        "and open the chat there), and to no one else.",
        class_="lead",
    )
    with section(class_="card"):
        with div(class_="row"):
            username = input_(id_="notice-user", value="friend")
            text = input_(id_="notice-text", value="Psst!")
            button("Send privately", id_="send-notice", onclick=callback(send_notice, username, text))
        p(id_="notice-result", class_="result")
    show_source(notice, send_notice)


@action(perm=NO_PERM_REQUIRED, target_id="notice-result")
def send_notice(request, username, text):
    user = User.objects.filter(username=username).first()
    if user is None:
        span("No user ", username, ".")
        return
    sender = request.user.get_username() or "anonymous"
    user_command(
        user, [["hypergen.append", "notices", hypergen_html(lambda: p(sender, " says: ", text, class_="notice"))]]
    )
    span("Sent to ", username, "'s open pages.")


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template)
def mistakes(request):
    command("hypergen.websocket.open", Mistakes.reverse())
    h1("Dev overlay")
    p(
        "With DEBUG = True, an error frame from the server shows as a panel on the page (dismiss it "
        "with x or Escape); with DEBUG = False only the console and the hypergen:websocket:error "
        "event see it.",
        class_="lead",
    )
    with section(class_="card"):
        with div(class_="row"):
            button("Count to 3", id_="count-ok", onclick=Mistakes.callback("count_to", 3))
            button(
                "Count to 99 (validation_error)",
                id_="count-bad",
                class_="secondary",
                onclick=Mistakes.callback("count_to", 99),
            )
            button(
                "A handler that raises (handler_error)",
                id_="explode",
                class_="secondary",
                onclick=Mistakes.callback("explode"),
            )
        p(id_="mistake-result", class_="result")
    show_source(mistakes, Mistakes)


@liveview(perm=NO_PERM_REQUIRED, base_template=base_template, path="login/")
def login_page(request):
    h1("Log in")
    p("Demo accounts: demo / demo (the staff room), friend / friend, admin / admin (the dashboard).", class_="lead")
    with section(class_="card"):
        with div(class_="row"):
            username = input_(id_="username", value="demo")
            password = input_(id_="password", type_="password", value="demo")
            button("Log in", id_="login", onclick=callback(do_login, username, password, request.GET.get("next", "")))
        p(id_="login-result", class_="result")


@action(perm=NO_PERM_REQUIRED, target_id="login-result")
def do_login(request, username, password, next_url=""):
    user = authenticate(request, username=username, password=password)
    if user is None:
        span("Wrong username or password.")
        return None
    login(request, user)
    if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return HttpResponseRedirect(next_url)
    # Without a next page: the staff room for those who may enter it, the lobby for everyone else
    # (sending them to the staff room would only bounce them back to this page).
    return HttpResponseRedirect(staff.reverse() if user.has_perm("auth.view_user") else "/")


@liveview(perm="auth.view_user", base_template=base_template, login_url="/login/")
def staff(request):
    url = StaffRoom.reverse()
    command("hypergen.websocket.open", url)
    h1("Staff room")
    p(
        "Only users with the auth.view_user permission can open this socket; anyone else is refused at the handshake.",
        class_="lead",
    )
    with section(class_="card"):
        with div(class_="row"):
            text = input_(id_="announcement", placeholder="Announcement")
            button("Announce", id_="announce", onclick=callback(url, "announce", text))
        p(id_="staff-log", class_="result")
    show_source(staff, StaffRoom)
