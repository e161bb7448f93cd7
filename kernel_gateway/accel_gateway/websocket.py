"""Kernel websocket connection tuned for a gateway: TCP_NODELAY, no silent output rate cap."""
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from traitlets import Float


class NoDelayWebsocketConnection(ZMQChannelsWebsocketConnection):
    """Stock ZMQ <-> websocket bridge with Nagle's algorithm off.

    Without TCP_NODELAY every small-message burst waits ~40 ms for a delayed ACK
    (measured: round trips 5x a direct kernel's instead of 1.3x).
    """

    iopub_data_rate_limit = Float(
        0,
        config=True,
        help="(bytes/sec) Cut iopub stream output above this rate, telling the user why. "
        "0 (default) disables the cut: large outputs arrive whole.",
    )

    def connect(self):
        self.websocket_handler.set_nodelay(True)
        return super().connect()
