from hypergen.hypergen import autourls

from chat import views

app_name = "chat"
urlpatterns = autourls(views, namespace="chat")
