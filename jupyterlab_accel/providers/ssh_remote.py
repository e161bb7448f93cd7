"""Python programs the SSH provider runs on the host (sent as the `-c` argument or over stdin).

They take no user input on their command line: parameters and the gateway token come as one
JSON line on stdin. The check runs on any Python 3 (old syntax only) so it can say "too old"."""

# Everything the provider keeps on a host lives under this folder (relative to the home).
BASE = ".cache/jupyterlab-accel"
VENV = BASE + "/venv"
VENV_PYTHON = VENV + "/bin/python"

# Every program reads one JSON line first: {"base": BASE, "instance": ID, ...}.

# stdin: {"base", "venv_python", "instance"}. stdout: one JSON object.
CHECK = r"""
import json, os, subprocess, sys
cfg = json.loads(sys.stdin.readline())
home = os.path.expanduser("~")
base = os.path.join(home, cfg["base"])
venv_py = os.path.join(home, cfg["venv_python"])
out = {"python": ".".join(str(n) for n in sys.version_info[:3]), "ok": sys.version_info >= (3, 9),
       "executable": sys.executable, "gateway": None, "venv": os.path.exists(venv_py),
       "running": None}
if out["venv"]:
    r = subprocess.run([venv_py, "-c", "import importlib.metadata as m; "
                        "print(m.version('jupyterlab-accel-gateway'))"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if r.returncode == 0:
        out["gateway"] = r.stdout.strip()
pid_file = os.path.join(base, "run", cfg["instance"], "gateway.json")
try:
    with open(pid_file) as f:
        rec = json.load(f)
    os.kill(rec["pid"], 0)
    if os.path.exists(rec["sock"]):
        out["running"] = rec
except (OSError, ValueError, KeyError):
    pass
print(json.dumps(out))
"""

# Run by the venv's Python. stdin: {"instance": ID, "token": T}. Starts the gateway detached
# (own session, so it outlives the SSH session) on a Unix socket in a 0700 folder, hands it the
# token through a pipe (never argv or environment), waits until it listens.
START = r"""
import json, os, signal, socket, subprocess, sys, time
cfg = json.loads(sys.stdin.readline())
home = os.path.expanduser("~")
run = os.path.join(home, cfg["base"], "run", cfg["instance"])
os.makedirs(run, mode=0o700, exist_ok=True)
os.chmod(run, 0o700)
sock = os.path.join(run, "gateway.sock")
pid_file = os.path.join(run, "gateway.json")
try:  # a previous gateway of this runtime that no longer answers
    with open(pid_file) as f:
        os.kill(json.load(f)["pid"], signal.SIGKILL)
except (OSError, ValueError, KeyError):
    pass
if os.path.exists(sock):
    os.unlink(sock)
child = (
    "import sys\n"
    "token = sys.stdin.readline().strip()\n"
    "import os\n"
    "fd = os.open(os.devnull, os.O_RDONLY); os.dup2(fd, 0)\n"
    "from accel_gateway.app import main\n"
    "main(argv=sys.argv[1:] + ['--IdentityProvider.token=' + token])\n"
)
log = open(os.path.join(run, "gateway.log"), "ab")
env = dict(os.environ)
env.pop("JUPYTER_TOKEN", None)
proc = subprocess.Popen(
    [sys.executable, "-c", child, "--ServerApp.sock=" + sock, "--ServerApp.sock_mode=0600",
     "--ServerApp.root_dir=" + home],
    stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, cwd=home, env=env,
    start_new_session=True)
proc.stdin.write((cfg["token"] + "\n").encode())
proc.stdin.close()
rec = {"pid": proc.pid, "sock": sock, "started": time.time()}
with open(pid_file + ".tmp", "w") as f:
    json.dump(rec, f)
os.replace(pid_file + ".tmp", pid_file)
deadline = time.time() + 60
while time.time() < deadline:
    if proc.poll() is not None:
        log.close()
        with open(os.path.join(run, "gateway.log"), "rb") as f:
            tail = f.read()[-1500:].decode("utf-8", "replace")
        print(json.dumps({"error": "the gateway exited (" + str(proc.returncode) + "): " + tail}))
        sys.exit(0)
    if os.path.exists(sock):
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(sock)
            break
        except OSError:
            pass
        finally:
            s.close()
    time.sleep(0.1)
else:
    print(json.dumps({"error": "the gateway did not listen within 60 s"}))
    sys.exit(0)
print(json.dumps(rec))
"""

# Run by the venv's Python (psutil is a gateway dependency). stdin: {"instance": ID}. Stops the
# gateway, then whatever it leaves of its process tree (kernels run in sessions of their own).
STOP = r"""
import json, os, shutil, signal, sys, time
import psutil
cfg = json.loads(sys.stdin.readline())
run = os.path.join(os.path.expanduser("~"), cfg["base"], "run", cfg["instance"])
pid_file = os.path.join(run, "gateway.json")
result = {"stopped": True, "left": []}
try:
    with open(pid_file) as f:
        rec = json.load(f)
except (OSError, ValueError):
    rec = None
if rec:
    try:
        gw = psutil.Process(rec["pid"])
        tree = [gw] + gw.children(recursive=True)
    except psutil.Error:
        tree = []
    for p in tree[:1]:
        try:
            p.terminate()
        except psutil.Error:
            pass
    gone, alive = psutil.wait_procs(tree, timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    gone, alive = psutil.wait_procs(alive, timeout=5)
    result["left"] = [p.pid for p in alive]
    result["stopped"] = not alive
shutil.rmtree(run, ignore_errors=True)
print(json.dumps(result))
"""
