from hypergen_consumers import autoconsumers
from tests import consumers

websocket_urlpatterns = autoconsumers(consumers, namespace="tests")
