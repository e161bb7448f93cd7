"""URL patterns of the /accel REST and websocket API (thin handlers over the managers)."""

from .api_sessions import handlers as api_session_handlers
from .filesync import FileSyncHandler
from .journal import JournalHandler
from .metrics import MetricsStreamHandler
from .providers import SSHConnectHandler, SSHHostsHandler, SSHRuntimeHandler, SSHRuntimesHandler
from .proxy import FilesProxyHandler, MetricsSnapshotHandler, MountsProxyHandler
from .runtime_terminals import AllTerminalsHandler
from .runtimes import RuntimeHandler, RuntimesHandler
from .secrets import (
    GrantsHandler,
    RuntimeSecretsHandler,
    SecretHandler,
    SecretRequestHandler,
    SecretRequestsHandler,
    SecretsHandler,
)
from .sessions import KeepaliveHandler, SessionHandler, SessionsHandler
from .slurm import SlurmJobHandler, SlurmJobsHandler
from .terminals import TerminalRelayHandler, TerminalsProxyHandler

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
    (rf"/accel/kernels/{_KID}/filesync", FileSyncHandler),
    (r"/accel/terminals", AllTerminalsHandler),
    (rf"/accel/runtimes/{_NAME}/api/terminals", TerminalsProxyHandler),
    (rf"/accel/runtimes/{_NAME}/api/terminals/(?P<term>[\w-]+)", TerminalsProxyHandler),
    (rf"/accel/runtimes/{_NAME}/terminals/websocket/(?P<term>[\w-]+)", TerminalRelayHandler),
    (r"/accel/secrets", SecretsHandler),
    (r"/accel/secrets/(?P<name>[^/]+)", SecretHandler),
    (r"/accel/secrets/(?P<name>[^/]+)/grants", GrantsHandler),
    (r"/accel/secret-requests", SecretRequestsHandler),
    (r"/accel/secret-requests/(?P<rid>[0-9a-f]+)", SecretRequestHandler),
    (rf"/accel/runtimes/{_NAME}/secrets", RuntimeSecretsHandler),
    (r"/accel/providers/ssh", SSHRuntimesHandler),
    (r"/accel/providers/ssh/hosts", SSHHostsHandler),
    (rf"/accel/providers/ssh/{_NAME}", SSHRuntimeHandler),
    (rf"/accel/providers/ssh/{_NAME}/connect", SSHConnectHandler),
    (r"/accel/providers/slurm/jobs", SlurmJobsHandler),
    (rf"/accel/providers/slurm/jobs/{_NAME}", SlurmJobHandler),
    *api_session_handlers,  # stock /api/sessions, errors kept as data
]
