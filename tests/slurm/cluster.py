"""A real one-node SLURM cluster for tests: a private munged, slurmctld and slurmd on localhost.

Everything lives in one temp folder (config, munge key and socket, state, logs); the daemons run
in the foreground as children of the test process and are stopped by PID. The node declares
`gpu:2` GRES backed by two plain files (this SLURM counts them as GPUs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.support.procs import free_port, stop

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel")


def missing_tools() -> list[str]:
    return [name for name in DAEMONS if shutil.which(name) is None]


SLURM_CONF = """\
ClusterName=accel-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
GresTypes=gpu
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
SchedulerParameters=sched_interval=1
MessageTimeout=5
KillWait=3
MinJobAge=300
NodeName=localhost CPUs={cpus} RealMemory=4000 Gres=gpu:2 State=UNKNOWN
PartitionName=gpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def job_processes(job_id: str) -> list[int]:
    """PIDs of processes running in the job (by SLURM_JOB_ID in their environment)."""
    import psutil

    pids = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get("SLURM_JOB_ID") == str(job_id):
                pids.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return pids


class Cluster:
    """munged + slurmctld + slurmd under `root`; `env` is what client commands need."""

    def __init__(self, root: Path, cpus: int | None = None):
        self.root = root
        self.cpus = cpus or os.cpu_count() or 2
        self.conf = root / "slurm.conf"
        self.env = {"SLURM_CONF": str(self.conf)}
        self.munged = self.slurmctld = self.slurmd = None

    def _spawn(self, name: str, *argv: str) -> subprocess.Popen:
        log = open(self.root / f"{name}.out", "ab")
        with log:
            return subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,
            )

    def start(self) -> Cluster:
        root = self.root
        for sub in ("munge", "state", "spool"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(root / "munge", 0o700)
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        socket_path = root / "munge" / "munge.sock"
        self.munged = self._spawn(
            "munged",
            "munged",
            "--foreground",
            "--force",
            f"--socket={socket_path}",
            f"--key-file={key}",
            f"--pid-file={root / 'munge' / 'munged.pid'}",
            f"--seed-file={root / 'munge' / 'seed'}",
            f"--log-file={root / 'munge' / 'munged.log'}",
        )
        self._wait(lambda: socket_path.exists(), "munged")
        for index in (0, 1):
            (root / f"gpu{index}").touch()
        self.conf.write_text(
            SLURM_CONF.format(
                ctld_port=free_port(),
                d_port=free_port(),
                munge_socket=socket_path,
                root=root,
                cpus=self.cpus,
            )
        )
        (root / "gres.conf").write_text(
            f"AutoDetect=off\nNodeName=localhost Name=gpu File={root}/gpu[0-1]\n"
        )
        self.start_controller()
        self.slurmd = self._spawn("slurmd", "slurmd", "-D", "-f", str(self.conf))
        self._wait(self._node_idle, "slurmd (node idle)", 30)
        return self

    def start_controller(self) -> None:
        self.slurmctld = self._spawn("slurmctld", "slurmctld", "-D", "-i", "-f", str(self.conf))
        self._wait(self._controller_up, "slurmctld", 30)

    def stop_controller(self) -> None:
        if self.slurmctld is not None:
            stop(self.slurmctld)
            self.slurmctld = None

    def command(self, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess:
        return subprocess.run(
            argv,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def _controller_up(self) -> bool:
        return self.command("squeue", "--json").returncode == 0

    def _node_idle(self) -> bool:
        r = self.command("sinfo", "--noheader", "--format=%t")
        return r.returncode == 0 and r.stdout.strip() in ("idle", "mix", "alloc")

    def _wait(self, check, what: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in (self.munged, self.slurmctld, self.slurmd):
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{what}: a daemon exited:\n{self.logs()}")
            if check():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{what} not ready within {timeout}s:\n{self.logs()}")

    def cancel_all(self) -> None:
        if self.slurmctld is not None:
            self.command("scancel", "--user", str(os.getuid()))

    def job_ids(self, active: bool = True) -> list[str]:
        """Jobs holding or waiting for resources (active), or every job squeue still lists."""
        import json

        r = self.command("squeue", "--json")
        jobs = json.loads(r.stdout).get("jobs", []) if r.returncode == 0 else []
        return [
            str(j["job_id"])
            for j in jobs
            if not active or j["job_state"] in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING")
        ]

    def hold_gpus(self, count: int = 2, seconds: int = 120) -> list[str]:
        """Submit `count` one-GPU sleep jobs and wait until they run (the node is then full)."""
        ids = []
        for _ in range(count):
            r = self.command(
                "sbatch",
                "--parsable",
                "--gres=gpu:1",
                "-o",
                "/dev/null",
                "--wrap",
                f"sleep {seconds}",
            )
            assert r.returncode == 0, r.stderr
            ids.append(r.stdout.strip())
        self._wait(lambda: all(self.state(i) == "RUNNING" for i in ids), "GPU holders running", 20)
        return ids

    def state(self, job_id: str) -> str | None:
        import json

        r = self.command("squeue", "--json")  # 22.05 ignores --jobs with --json
        jobs = json.loads(r.stdout).get("jobs", []) if r.returncode == 0 else []
        return next((j["job_state"] for j in jobs if str(j["job_id"]) == str(job_id)), None)

    def wait_gone(self, job_id: str, timeout: float = 20) -> None:
        """Until the job holds nothing and no process of it is left on the node."""
        self._wait(
            lambda: job_id not in self.job_ids() and not job_processes(job_id),
            f"job {job_id} gone",
            timeout,
        )

    def logs(self) -> str:
        text = []
        for name in ("munged.out", "slurmctld.out", "slurmd.out", "slurmctld.log", "slurmd.log"):
            p = self.root / name
            if p.exists():
                text.append(f"--- {name}\n" + p.read_text(errors="replace")[-1500:])
        return "\n".join(text)

    def stop(self) -> None:
        self.cancel_all()
        for proc in (self.slurmd, self.slurmctld, self.munged):
            if proc is not None:
                stop(proc)
        self.slurmd = self.slurmctld = self.munged = None
