"""Kernel websocket connection tuned for a gateway: TCP_NODELAY, no silent output rate cap,
and gateway notices (accel_notice) written in whichever protocol the client negotiated."""

import json

from jupyter_client.jsonutil import json_default
from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from traitlets import Float

from .journal_ws import JournalReplayMixin

V1 = "v1.kernel.websocket.jupyter.org"


class NoDelayWebsocketConnection(JournalReplayMixin, ZMQChannelsWebsocketConnection):
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
        register = getattr(self.multi_kernel_manager, "register_socket", None)
        if register is not None:
            register(self.kernel_id, self)
        return super().connect()

    def disconnect(self):
        unregister = getattr(self.multi_kernel_manager, "unregister_socket", None)
        if unregister is not None:
            unregister(self.kernel_id, self)
        return super().disconnect()

    def send_notice(self, content: dict) -> None:
        """An iopub `accel_notice` message from the gateway itself (not from the kernel)."""
        msg = self.session.msg("accel_notice", content=content)
        if self.subprotocol == V1:
            self.write_message(serialize_msg_to_ws_v1(msg, "iopub", self.session.pack), binary=True)
        else:
            msg["channel"] = "iopub"
            self.write_message(json.dumps(msg, default=json_default))
