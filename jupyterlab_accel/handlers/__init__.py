"""URL patterns of the /accel REST and websocket API (thin handlers over the managers)."""

from .journal import JournalHandler
from .metrics import MetricsStreamHandler
from .proxy import FilesProxyHandler, MetricsSnapshotHandler, MountsProxyHandler
from .runtimes import RuntimeHandler, RuntimesHandler
from .sessions import KeepaliveHandler, SessionHandler, SessionsHandler

_NAME = r"(?P<name>[a-z0-9][a-z0-9-]*)"
_KID = r"(?P<kernel_id>[\w-]+)"

handlers = [
    (r"/accel/runtimes", RuntimesHandler),
    (rf"/accel/runtimes/{_NAME}", RuntimeHandler),
    (rf"/accel/runtimes/{_NAME}/metrics", MetricsSnapshotHandler),
    (rf"/accel/runtimes/{_NAME}/metrics/stream", MetricsStreamHandler),
    (rf"/accel/runtimes/{_NAME}/(?P<rest>(?:contents|files)(?:/.*)?)", FilesProxyHandler),
    (rf"/accel/runtimes/{_NAME}/mounts(?P<rest>/.*)?", MountsProxyHandler),
    (r"/accel/sessions", SessionsHandler),
    (rf"/accel/sessions/{_KID}", SessionHandler),
    (rf"/accel/kernels/{_KID}/keepalive", KeepaliveHandler),
    (rf"/accel/kernels/{_KID}/journal", JournalHandler),
]
