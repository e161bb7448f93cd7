"""SLURM provider: a cluster runtime whose kernels each run in a scheduler job.

A cluster runtime (one entry of `SlurmClusters.runtimes`, one shape: partition, GPUs, memory,
CPUs, time limit, account, extra options) is a template. Starting a kernel on it submits a job
(`SlurmJobProvider`) that runs our gateway on the allocated node; the job's runtime is what the
kernel is routed to. While the job is pending its status says so ("Pending: Resources, 3rd in
queue"); once running, the job writes the gateway's address and a fresh token to a 0600 file
(slurm_job.py) and the server connects. The job's time limit is the runtime's lifetime: the
gateway warns `cull_warning` seconds before it. Stopping the runtime cancels the job; a job the
scheduler ends (time limit, preemption, node failure) makes the runtime STOPPED with the
scheduler's reason."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from dataclasses import dataclass, field

from traitlets import Dict, Float, Instance, List, Unicode, default
from traitlets.config import LoggingConfigurable

from .base import Endpoint, ProviderError, RuntimeProvider, State
from .slurm_client import JobInfo, SlurmClient, SlurmError, ordinal
from .slurm_job import ConnectionFileError, job_script, read_connection, remove_connection

_SHAPE_KEYS = {
    "name",
    "display_name",
    "partition",
    "gpus",
    "gpu_type",
    "gpu_option",
    "memory",
    "cpus",
    "time_limit",
    "account",
    "extra_options",
    "accelerator",
    "shape",
    "price_per_hour",
}
_TIME_RE = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:,@+=/-]+$")


class ShapeError(ValueError):
    """A cluster runtime entry that cannot be used (reported at startup and as a 400)."""


def time_limit_seconds(value: str) -> int:
    """SLURM time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S."""
    m = _TIME_RE.match(value.strip())
    if not m:
        raise ShapeError(f"time_limit {value!r} is not a SLURM time (e.g. 60, 2:00:00, 1-0)")
    days, a, b, c = m.groups()
    a, b, c = int(a), int(b or 0), int(c or 0)
    if days is not None:  # D-H[:M[:S]]
        return ((int(days) * 24 + a) * 60 + b) * 60 + c
    if m.group(4) is not None:  # H:M:S
        return (a * 60 + b) * 60 + c
    if m.group(3) is not None:  # M:S
        return a * 60 + b
    return a * 60  # M


@dataclass
class ClusterShape:
    """What one cluster runtime asks the scheduler for."""

    name: str
    display_name: str
    partition: str | None = None
    gpus: int = 0
    gpu_type: str | None = None
    gpu_option: str = "gres"  # "gres": --gres=gpu[:type]:N; "gpus": --gpus=[type:]N
    memory: str | None = None  # --mem, e.g. "16G"
    cpus: int | None = None  # --cpus-per-task
    time_limit: str | None = None  # --time, e.g. "2:00:00"
    account: str | None = None
    extra_options: list[str] = field(default_factory=list)
    accelerator: str = "gpu"
    shape: str = "standard"
    price_per_hour: float | None = None

    @classmethod
    def from_config(cls, entry: dict) -> ClusterShape:
        if not isinstance(entry, dict):
            raise ShapeError("a cluster runtime must be an object")
        unknown = set(entry) - _SHAPE_KEYS
        if unknown:
            raise ShapeError(f"unknown cluster runtime keys: {sorted(unknown)}")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ShapeError("a cluster runtime needs a 'name'")
        gpus = entry.get("gpus", 0)
        if not isinstance(gpus, int) or gpus < 0:
            raise ShapeError(f"{name}: gpus must be a whole number >= 0")
        option = entry.get("gpu_option", "gres")
        if option not in ("gres", "gpus"):
            raise ShapeError(f"{name}: gpu_option must be 'gres' or 'gpus'")
        for key in ("partition", "gpu_type", "memory", "account", "time_limit"):
            value = entry.get(key)
            if value is not None and (not isinstance(value, str) or not _SAFE_VALUE.match(value)):
                raise ShapeError(f"{name}: {key} {value!r} is not a plain scheduler value")
        cpus = entry.get("cpus")
        if cpus is not None and (not isinstance(cpus, int) or cpus < 1):
            raise ShapeError(f"{name}: cpus must be a whole number >= 1")
        extra = entry.get("extra_options", [])
        if not isinstance(extra, list) or not all(isinstance(x, str) for x in extra):
            raise ShapeError(f"{name}: extra_options must be a list of strings")
        if entry.get("time_limit"):
            time_limit_seconds(entry["time_limit"])
        return cls(
            name=name,
            display_name=entry.get("display_name") or name,
            partition=entry.get("partition"),
            gpus=gpus,
            gpu_type=entry.get("gpu_type"),
            gpu_option=option,
            memory=entry.get("memory"),
            cpus=cpus,
            time_limit=entry.get("time_limit"),
            account=entry.get("account"),
            extra_options=list(extra),
            accelerator=entry.get("accelerator") or ("gpu" if gpus else "none"),
            shape=entry.get("shape") or "standard",
            price_per_hour=entry.get("price_per_hour"),
        )

    @property
    def lifetime(self) -> int | None:
        return time_limit_seconds(self.time_limit) if self.time_limit else None

    def sbatch_options(self) -> list[str]:
        opts = [f"--job-name=accel-{self.name}"]
        if self.partition:
            opts.append(f"--partition={self.partition}")
        if self.account:
            opts.append(f"--account={self.account}")
        if self.gpus:
            kind = f"{self.gpu_type}:" if self.gpu_type else ""
            opts.append(
                f"--gres=gpu:{kind}{self.gpus}"
                if self.gpu_option == "gres"
                else f"--gpus={kind}{self.gpus}"
            )
        if self.cpus:
            opts.append(f"--cpus-per-task={self.cpus}")
        if self.memory:
            opts.append(f"--mem={self.memory}")
        if self.time_limit:
            opts.append(f"--time={self.time_limit}")
        return [*opts, *self.extra_options]


class SlurmClusters(LoggingConfigurable):
    """Cluster runtimes and how their jobs run the gateway."""

    runtimes = List(
        Dict(),
        config=True,
        help="Cluster runtimes, one per shape: [{name, display_name?, partition?, gpus? (N), "
        "gpu_type?, gpu_option? ('gres' -> --gres=gpu:N, 'gpus' -> --gpus=N), memory? ('16G'), "
        "cpus? (per task), time_limit? (SLURM time, the runtime's lifetime), account?, "
        "extra_options? [sbatch options], accelerator? ('gpu'), shape? ('standard'|'highmem'), "
        "price_per_hour?}]. Each kernel started on one runs in its own job.",
    )
    gateway_python = Unicode(
        config=True,
        help="Python on the compute nodes that has jupyterlab-accel-gateway installed (the job "
        "script's interpreter). Default: this server's Python (a shared filesystem).",
    )

    @default("gateway_python")
    def _default_python(self):
        return sys.executable

    gateway_args = List(
        Unicode(),
        config=True,
        help="Extra accel_gateway arguments in the job (no secrets: job scripts are stored by "
        "the scheduler).",
    )
    connection_dir = Unicode(
        "~/.jupyterlab-accel/slurm",
        config=True,
        help="Folder (0700, on the filesystem shared by this server and the nodes) where a job "
        "writes its gateway's address and token, mode 0600.",
    )
    bind_ip = Unicode(
        "0.0.0.0",
        config=True,
        help="Address the gateway listens on in the job (token-authenticated).",
    )
    advertise_host = Unicode(
        "",
        config=True,
        help="Host name the server uses to reach the node's gateway; empty: the node's FQDN.",
    )
    workdir = Unicode("~", config=True, help="Working folder of the job (the runtime's workspace).")
    export_env = List(
        Unicode(),
        ["PATH", "PYTHONPATH", "HOME", "USER", "LANG", "SLURM_CONF"],
        config=True,
        help="Environment variables passed to the job (sbatch --export); nothing else of the "
        "server's environment (which may hold tokens) reaches the scheduler.",
    )
    poll_interval = Float(2.0, config=True, help="Seconds between squeue polls of a job.")
    pending_timeout = Float(
        0,
        config=True,
        help="Seconds a job may stay pending before the start is given up and the job "
        "cancelled; 0: wait until cancelled.",
    )
    ready_timeout = Float(
        120,
        config=True,
        help="Seconds a running job's gateway may take to write its connection file.",
    )
    cull_warning = Float(
        300,
        config=True,
        help="Seconds before the job's time limit at which kernels get an accel_notice warning.",
    )
    kernel_spec = Unicode(
        "python3", config=True, help="Kernel spec of the job's gateway that kernels start with."
    )
    ended_linger = Float(
        600,
        config=True,
        help="Seconds an ended job stays listed (with the scheduler's reason) before it goes.",
    )
    client = Instance(SlurmClient)

    @default("client")
    def _default_client(self):
        return SlurmClient(parent=self)

    def shapes(self) -> dict[str, ClusterShape]:
        shapes = {}
        for entry in self.runtimes:
            try:
                shape = ClusterShape.from_config(entry)
            except ShapeError as e:
                self.log.error("jupyterlab_accel: ignoring cluster runtime: %s", e)
                continue
            shapes[shape.name] = shape
        return shapes

    def job_options(self, shape: ClusterShape) -> list[str]:
        """sbatch options; creates the private connection folder the job's log also goes to."""
        os.makedirs(self._expand(self.connection_dir), mode=0o700, exist_ok=True)
        export = [name for name in self.export_env if name]
        return [
            *shape.sbatch_options(),
            f"--export={','.join(export) if export else 'NONE'}",
            f"--chdir={self._expand(self.workdir)}",
            f"--output={self._expand(self.connection_dir)}/job-%j.log",
        ]

    def script(self, shape: ClusterShape) -> str:
        args = list(self.gateway_args)
        if shape.lifetime:
            warning = min(self.cull_warning, shape.lifetime / 2)
            args += [
                f"--KernelLimits.max_lifetime={shape.lifetime}",
                f"--KernelLimits.cull_warning={warning:g}",
                f"--KernelLimits.check_interval={min(30, max(1, warning / 4)):g}",
            ]
        return job_script(
            self.gateway_python, self.connection_dir, self.bind_ip, self.advertise_host, args
        )

    @staticmethod
    def _expand(path: str) -> str:
        return os.path.expanduser(path)

    def new_job(self, name: str, shape: ClusterShape, job_id: str | None = None):
        return SlurmJobProvider(name, cluster=self, shape=shape, job_id=job_id, parent=self)


def pending_message(job: JobInfo, position: int | None) -> str:
    # a job the scheduler has not looked at yet has reason "None"
    text = "Pending" if job.reason == "None" else f"Pending: {job.reason}"
    if position:
        text += f", {ordinal(position)} in queue"
    return text


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 120:
        return f"{seconds // 60} min"
    return f"{seconds} s"


class SlurmJobProvider(RuntimeProvider):
    """One scheduler job running our gateway: the runtime of one kernel."""

    kind = "slurm"

    def __init__(
        self,
        name: str,
        *,
        cluster: SlurmClusters,
        shape: ClusterShape,
        job_id: str | None = None,
        **kw,
    ):
        super().__init__(name, **kw)
        self.cluster, self.shape, self.job_id = cluster, shape, job_id
        self.price_per_hour = shape.price_per_hour
        self.job: JobInfo | None = None
        self._stopping = False
        self._watch: asyncio.Task | None = None

    @property
    def client(self) -> SlurmClient:
        return self.cluster.client

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> Endpoint:
        if self.job_id is None:
            self.set_status(State.STARTING, "Submitting a job", step="submitting")
            try:
                self.job_id = await self.client.submit(
                    self.cluster.script(self.shape), self.cluster.job_options(self.shape)
                )
            except SlurmError as e:
                self.set_status(State.STOPPED, str(e), step="submitting", reason="submit_failed")
                raise ProviderError(
                    f"Could not submit a job: {e}", step="submitting", reason="submit_failed"
                ) from None
            self.log.info("jupyterlab_accel: %s: submitted SLURM job %s", self.name, self.job_id)
        return await self._wait_ready()

    async def reattach(self) -> Endpoint:
        if self.job_id is None:
            return await self.start()
        return await self._wait_ready()

    async def _wait_ready(self) -> Endpoint:
        assert self.job_id is not None  # submitted by start(), or known to reattach()
        started = time.monotonic()
        running_since = None
        failures = 0
        while True:
            if self._stopping:
                raise ProviderError(f"Job {self.job_id} was cancelled", reason="cancelled")
            try:
                job = await self.client.job(self.job_id)
                failures = 0
            except SlurmError as e:
                failures += 1
                if failures >= 5:
                    self.set_status(State.STOPPED, str(e), step="pending", reason="scheduler")
                    raise ProviderError(str(e), step="pending", reason="scheduler") from None
                await asyncio.sleep(self.cluster.poll_interval)
                continue
            if job is None or job.ended:
                self._ended(job)
                tail = self._log_tail()
                raise ProviderError(
                    self.message + (f"; its log ends: {tail}" if tail else ""),
                    step="pending",
                    reason=self.status.reason,
                )
            self.job = job
            if job.pending:
                position = await self._position(job)
                self.set_status(
                    State.STARTING,
                    pending_message(job, position),
                    step="pending",
                    details=self._details(queue_position=position),
                )
                if (
                    self.cluster.pending_timeout
                    and time.monotonic() - started > self.cluster.pending_timeout
                ):
                    await self.stop()
                    raise ProviderError(
                        f"Job {self.job_id} was still pending after "
                        f"{self.cluster.pending_timeout:g}s; cancelled",
                        step="pending",
                        reason="pending_timeout",
                    )
            elif job.running:
                running_since = running_since or time.monotonic()
                try:
                    conn = read_connection(self.cluster.connection_dir, self.job_id)
                except ConnectionFileError as e:
                    await self.stop()
                    raise ProviderError(str(e), step="connecting", reason="bad_connection_file")
                if conn is not None:
                    self.endpoint = Endpoint(conn["url"], conn["token"])
                    self.set_status(State.READY, self._running_message(), details=self._details())
                    self._start_watch()
                    return self.endpoint
                self.set_status(
                    State.STARTING,
                    f"Job {self.job_id} running on {job.node}; starting the gateway",
                    step="starting",
                    details=self._details(),
                )
                if time.monotonic() - running_since > self.cluster.ready_timeout:
                    await self.stop()
                    raise ProviderError(
                        f"The gateway of job {self.job_id} did not start within "
                        f"{self.cluster.ready_timeout:g}s (see job-{self.job_id}.log in "
                        f"{self.cluster.connection_dir})",
                        step="starting",
                        reason="gateway_timeout",
                    )
            await asyncio.sleep(self.cluster.poll_interval)

    async def _position(self, job: JobInfo) -> int | None:
        try:
            return await self.client.queue_position(job)
        except SlurmError:
            return None

    def _log_tail(self, lines: int = 5) -> str:
        """The end of the job's output file (in the private connection folder)."""
        path = os.path.join(
            self.cluster._expand(self.cluster.connection_dir), f"job-{self.job_id}.log"
        )
        try:
            with open(path, errors="replace") as f:
                text = f.read()[-4000:]
        except OSError:
            return ""
        return " | ".join(line for line in text.splitlines()[-lines:] if line.strip())[:800]

    def _start_watch(self) -> None:
        if self._watch is None or self._watch.done():
            self._watch = asyncio.ensure_future(self._watch_job())

    async def _watch_job(self) -> None:
        """While ready: notice the scheduler ending the job; keep time left fresh."""
        assert self.job_id is not None  # ready means submitted
        while not self._stopping and self.state == State.READY:
            await asyncio.sleep(self.cluster.poll_interval)
            try:
                job = await self.client.job(self.job_id)
            except SlurmError:
                continue
            if self._stopping:
                return
            if job is None or job.ended:
                self._ended(job)
                return
            self.job = job
            self.status.details = self._details()
            self.status.message = self._running_message()

    def _ended(self, job: JobInfo | None) -> None:
        assert self.job_id is not None  # only a submitted job ends
        if job is None:
            why, state = "it is no longer known to the scheduler", "UNKNOWN"
        else:
            why, state = job.ended_reason(), job.state
            self.job = job
        remove_connection(self.cluster.connection_dir, self.job_id)
        self.endpoint = None
        self.set_status(
            State.STOPPED,
            f"SLURM job {self.job_id} ended: {why}",
            reason=state.lower(),
            details=self._details(job_state=state),
        )

    async def ended_reason(self, wait: float) -> str | None:
        """The job's end ('SLURM job 12 ended: it reached its time limit') once the scheduler
        reports it within `wait` seconds; None while the job goes on."""
        deadline = time.monotonic() + wait
        while True:
            if self.state is State.STOPPED:
                return self.message
            if self.job_id is None:
                return None
            try:
                job = await self.client.job(self.job_id)
            except SlurmError:
                job = self.job
            out_of_time = time.monotonic() >= deadline
            if job is None or job.ended or (job.completing and out_of_time):
                if self.state is not State.STOPPED:
                    self._stopping = True
                    self._ended(job)
                return self.message
            if out_of_time:
                return None
            await asyncio.sleep(min(1.0, self.cluster.poll_interval))

    async def stop(self, message: str | None = None, reason: str = "cancelled") -> None:
        """Cancel the job (pending or running); `message`: why, as the status says it."""
        self._stopping = True
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
        if self.job_id is not None and (self.job is None or not self.job.ended):
            try:
                await self.client.cancel(self.job_id)
            except SlurmError as e:
                self.log.warning("jupyterlab_accel: scancel %s: %s", self.job_id, e)
        if self.job_id is not None:
            remove_connection(self.cluster.connection_dir, self.job_id)
        self.endpoint = None
        if message is None:
            message = f"SLURM job {self.job_id} cancelled" if self.job_id else "Not submitted"
        self.set_status(
            State.STOPPED,
            message,
            reason=reason,
            details=self._details(job_state="CANCELLED"),
        )

    # -- what the UI shows ------------------------------------------------------------------
    def _details(self, **extra) -> dict:
        job = self.job
        left = job.seconds_left() if job else None
        details = {
            "job_id": self.job_id,
            "cluster_runtime": self.shape.name,
            "job_state": job.state if job else None,
            "job_reason": job.reason if job else None,
            "node": job.node if job and job.running else None,
            "time_limit": self.shape.time_limit,
            "ends_at": job.end_time if job and job.running and left is not None else None,
            "time_left": round(left) if left is not None else None,
        }
        details.update(extra)
        return details

    def _running_message(self) -> str:
        job = self.job
        text = f"Job {self.job_id} on {job.node if job else '?'}"
        left = job.seconds_left() if job else None
        if left is not None:
            text += f", {duration(left)} left"
        return text

    def public_model(self) -> dict:
        model = super().public_model()
        if self.state == State.READY and self.job is not None:
            model["details"] = self._details()  # time left as of now
        return model

    def persisted(self) -> dict:
        return {**super().persisted(), "cluster_runtime": self.shape.name, "job_id": self.job_id}
