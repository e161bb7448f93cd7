"""The SLURM scheduler client: sbatch, squeue, scancel on their machine-readable output.

`sbatch --parsable` gives the job id, `squeue --json` (SLURM >= 21.08; 22.05 here) job states,
reasons, nodes and times. No human table is parsed. `command_prefix` runs the commands somewhere
else (a login node: `["ssh", "login1"]`); the script goes on stdin, never on a command line."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from traitlets import Float, List, Unicode
from traitlets.config import LoggingConfigurable

# Job states after which the job holds no resources (squeue keeps them for MinJobAge).
ENDED_STATES = {
    "BOOT_FAIL": "the node failed to boot",
    "CANCELLED": "cancelled",
    "COMPLETED": "completed",
    "DEADLINE": "its deadline passed",
    "FAILED": "failed",
    "NODE_FAIL": "its node failed",
    "OUT_OF_MEMORY": "out of memory",
    "PREEMPTED": "preempted by a higher-priority job",
    "REVOKED": "revoked",
    "TIMEOUT": "it reached its time limit",
}
PENDING_STATES = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING"}


class SlurmError(Exception):
    """A scheduler command failed; the text is the scheduler's own message."""


@dataclass
class JobInfo:
    """One job as `squeue --json` describes it."""

    job_id: str
    state: str  # PENDING, RUNNING, COMPLETED, TIMEOUT, ...
    reason: str  # Resources, Priority, None, ...
    node: str | None
    partition: str
    time_limit: int | None  # minutes; None for unlimited
    submit_time: float
    start_time: float | None
    end_time: float | None  # expected end while running
    priority: int
    exit_code: int | None

    @classmethod
    def from_json(cls, j: dict) -> JobInfo:
        def when(key):
            value = j.get(key) or 0
            return float(value) if value else None

        limit = j.get("time_limit")
        return cls(
            job_id=str(j.get("job_id")),
            state=str(j.get("job_state") or "UNKNOWN").split()[0],
            reason=str(j.get("state_reason") or "None"),
            node=(j.get("batch_host") or j.get("nodes") or None),
            partition=str(j.get("partition") or ""),
            time_limit=int(limit) if isinstance(limit, int) and limit < 0xFFFFFFF else None,
            submit_time=float(j.get("submit_time") or 0),
            start_time=when("start_time"),
            end_time=when("end_time"),
            priority=int(j.get("priority") or 0),
            exit_code=j.get("exit_code") if isinstance(j.get("exit_code"), int) else None,
        )

    @property
    def pending(self) -> bool:
        return self.state in PENDING_STATES

    @property
    def running(self) -> bool:
        return self.state == "RUNNING"

    @property
    def completing(self) -> bool:
        """Ending, final state not known yet (its processes are being stopped)."""
        return self.state == "COMPLETING"

    @property
    def ended(self) -> bool:
        return (
            not self.pending
            and not self.running
            and not self.completing
            and self.state != "SUSPENDED"
        )

    def seconds_left(self, now: float | None = None) -> float | None:
        if not self.running or not self.end_time or self.time_limit is None:
            return None
        return max(0.0, self.end_time - (now or time.time()))

    def ended_reason(self) -> str:
        if self.completing:  # final state not reported yet: judge by the clock
            if self.end_time and time.time() >= self.end_time - 5:
                return ENDED_STATES["TIMEOUT"]
            return "it is ending"
        why = ENDED_STATES.get(self.state, self.state.lower())
        if self.state == "FAILED" and self.exit_code and self.exit_code < 256:
            why += f" (exit code {self.exit_code})"
        return why


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class SlurmClient(LoggingConfigurable):
    """Runs the scheduler's commands (here, or through `command_prefix`)."""

    command_prefix = List(
        Unicode(),
        config=True,
        help="Words put before every scheduler command, to run it elsewhere: e.g. "
        "['ssh', '-o', 'BatchMode=yes', 'login1'] for a login node. Empty: run here.",
    )
    sbatch = Unicode("sbatch", config=True, help="The sbatch command.")
    squeue = Unicode("squeue", config=True, help="The squeue command.")
    scancel = Unicode("scancel", config=True, help="The scancel command.")
    command_timeout = Float(
        30, config=True, help="Seconds a scheduler command may take before it counts as failed."
    )

    async def run(self, *args: str, stdin: str | None = None) -> str:
        """stdout of the command; SlurmError with the scheduler's message on failure."""
        argv = [*self.command_prefix, *args]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as e:
            raise SlurmError(f"cannot run {args[0]}: {e.strerror or e}") from None
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(stdin.encode() if stdin is not None else None),
                self.command_timeout,
            )
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise SlurmError(
                f"{args[0]} did not answer within {self.command_timeout:g}s (is slurmctld running?)"
            ) from None
        if proc.returncode != 0:
            text = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
            raise SlurmError(f"{args[0]} failed: {_last_lines(text)}")
        return out.decode(errors="replace")

    async def submit(self, script: str, options: list[str]) -> str:
        """Submit a batch script (on stdin); the job id."""
        out = await self.run(self.sbatch, "--parsable", *options, stdin=script)
        job_id = out.strip().split(";")[0]
        if not job_id.isdigit():
            raise SlurmError(f"sbatch answered no job id: {out.strip()[:200]!r}")
        return job_id

    async def jobs(self, job_ids: list[str]) -> dict[str, JobInfo]:
        """The jobs squeue still knows, by id (ended jobs stay for the cluster's MinJobAge).

        22.05's `squeue --json` ignores filter options (--jobs, --states): filtered here."""
        if not job_ids:
            return {}
        wanted = {str(j) for j in job_ids}
        return {info.job_id: info for info in await self.all_jobs() if info.job_id in wanted}

    async def all_jobs(self) -> list[JobInfo]:
        return _parse_jobs(await self.run(self.squeue, "--json"))

    async def job(self, job_id: str) -> JobInfo | None:
        return (await self.jobs([job_id])).get(job_id)

    async def queue_position(self, job: JobInfo) -> int | None:
        """1-based place among pending jobs of its partition (higher priority first)."""
        if not job.pending:
            return None
        pending = [
            j
            for j in await self.all_jobs()
            if j.pending and (not job.partition or j.partition == job.partition)
        ]
        pending.sort(key=lambda j: (-j.priority, j.submit_time, int(j.job_id)))
        for place, other in enumerate(pending, 1):
            if other.job_id == job.job_id:
                return place
        return None

    async def cancel(self, job_id: str) -> None:
        await self.run(self.scancel, job_id)


def _parse_jobs(out: str) -> list[JobInfo]:
    try:
        body = json.loads(out)
    except ValueError:
        raise SlurmError("squeue --json did not answer JSON") from None
    return [JobInfo.from_json(j) for j in body.get("jobs") or [] if isinstance(j, dict)]


def _last_lines(text: str, n: int = 3) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return " ".join(lines[-n:])[:500] or "no message"
