from chat import consumers
from hypergen_consumers import autoconsumers

websocket_urlpatterns = autoconsumers(consumers, namespace="chat")
