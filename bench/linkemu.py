"""A user-space network link between two TCP endpoints: one-way delay and a bandwidth cap
(token bucket) in each direction, and counters of what crossed it.

The kernel's `netem` is not available here, so this is a proxy: 127.0.0.1:port ->
127.0.0.1:target_port. Each direction is one `Pipe` shared by every connection, as a real link's
bottleneck is: a chunk leaves when the bucket has tokens for it (serialisation at `rate`) and
arrives `delay` later. Reads of a connection stop while it holds more than its bound in flight,
so memory is bounded by the bandwidth-delay product per connection, not by what senders offer.

    LinkEmulator(target_port, profile="far")            # in a thread of this process
    LinkProcess(target_port, profile="far")             # in its own process (benchmarks)
    python -m bench.linkemu TARGET_PORT [--port P] [--profile far]

Counters (`stats()`): connections, bytes each way, and `exchanges`: times a connection's client
sent after the other side had spoken (or first): one per request/response turn, so a REST call
on a kept-alive connection is 1 and on a new connection 1 plus the connection's own handshake;
`requests` names each turn ("<ms since reset> ms <HTTP request line without the query>", or
"... websocket frame").
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CHUNK = 64 * 1024
REPO = str(Path(__file__).resolve().parents[1])


@dataclass(frozen=True)
class Profile:
    name: str
    rtt: float  # seconds, both ways together
    rate: float  # bytes per second, each direction

    @property
    def delay(self) -> float:
        return self.rtt / 2


PROFILES = {
    "lan": Profile("lan", 0.001, 1e9 / 8),
    "region": Profile("region", 0.020, 200e6 / 8),
    "far": Profile("far", 0.080, 50e6 / 8),
}


def resolve(profile: str | Profile | None, delay: float | None, rate: float | None) -> Profile:
    """A profile by name, or custom one-way delay (s) and rate (bytes/s; 0 = unlimited)."""
    if isinstance(profile, Profile):
        return profile
    if profile is not None:
        if profile not in PROFILES:
            raise ValueError(f"unknown link profile {profile!r}: one of {', '.join(PROFILES)}")
        return PROFILES[profile]
    return Profile("custom", 2 * (delay or 0.0), rate or 0.0)


class Pipe:
    """One direction of the link: token bucket at `rate` then a fixed `delay`."""

    def __init__(self, delay: float, rate: float, burst: int = CHUNK):
        self.delay, self.rate, self.burst = delay, rate, burst
        self.free_at = 0.0  # when the bucket has tokens for the next chunk
        self.configure(delay, rate)
        self.bytes = 0
        self.in_flight_max = 0

    def configure(self, delay: float, rate: float) -> None:
        self.delay, self.rate = delay, rate
        # Bound: the bandwidth-delay product plus a few chunks (at least 1 MiB).
        self.bound = max(1 << 20, int(rate * delay * 2) + 4 * CHUNK) if rate else 1 << 20

    def departure(self, now: float, n: int) -> float:
        """When n bytes offered at `now` have left the sender's side of the link."""
        if not self.rate:
            return now
        # Tokens accrue while idle up to `burst`: starting no earlier than (free_at - burst/rate).
        start = max(now - self.burst / self.rate, self.free_at)
        self.free_at = start + n / self.rate
        return max(now, self.free_at)


class _Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.connections = 0
        self.exchanges = 0
        self.up_bytes = 0
        self.down_bytes = 0
        self.requests: collections.deque = collections.deque(maxlen=200)
        self.since = time.monotonic()

    def exchange(self, first: bytes) -> None:
        """One more turn; remember its HTTP request line (or 'websocket frame')."""
        self.exchanges += 1
        line = first[:300].split(b"\r\n", 1)[0]
        verb = line.split(b" ", 1)[0]
        if verb in (b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"HEAD", b"OPTIONS"):
            text = line.decode("latin-1").rsplit(" HTTP/", 1)[0].split("?", 1)[0]
        else:
            text = "websocket frame"
        self.requests.append(f"{(time.monotonic() - self.since) * 1e3:.0f} ms {text}")

    def as_dict(self) -> dict:
        return {
            "connections": self.connections,
            "exchanges": self.exchanges,
            "up_bytes": self.up_bytes,
            "down_bytes": self.down_bytes,
            "requests": list(self.requests),
        }


class LinkEmulator:
    """127.0.0.1:port -> 127.0.0.1:target_port through an emulated link, on its own loop thread."""

    def __init__(
        self,
        target_port: int,
        port: int = 0,
        profile: str | Profile | None = None,
        *,
        delay: float | None = None,
        rate: float | None = None,
    ):
        self.profile = resolve(profile, delay, rate)
        self.target_port = target_port
        self.loop = asyncio.new_event_loop()
        self._stats = _Stats()
        self._writers: set = set()
        self._server = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.port = self._call(self._listen(port))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _listen(self, port: int) -> int:
        p = self.profile
        self.up = Pipe(p.delay, p.rate)  # client -> target
        self.down = Pipe(p.delay, p.rate)  # target -> client
        self._server = await asyncio.start_server(
            self._client, "127.0.0.1", port, reuse_address=True
        )
        return self._server.sockets[0].getsockname()[1]

    @staticmethod
    def _nodelay(writer) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def _client(self, reader, writer):
        # The TCP handshake crosses the link once before the first byte: one RTT, paid here.
        await asyncio.sleep(self.profile.rtt)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._stats.connections += 1
        for w in (writer, up_writer):
            self._nodelay(w)
        self._writers |= {writer, up_writer}
        turn = {"last": "down"}  # who spoke last on this connection
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, self.up, "up", turn),
                self._pipe(up_reader, writer, self.down, "down", turn),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            pass  # the emulator is stopping: its connections end with it, quietly
        finally:
            self._writers -= {writer, up_writer}
            for w in (writer, up_writer):
                w.close()

    async def _pipe(self, reader, writer, pipe: Pipe, side: str, turn: dict):
        """Read, stamp an arrival time, deliver in order at that time."""
        queue: collections.deque = collections.deque()
        ready = asyncio.Event()
        room = asyncio.Event()  # per connection, as TCP's flow control is: a receiver that
        room.set()  # stops reading holds back its own sender, never the link's other users
        flight = 0
        done = False

        async def deliver():
            nonlocal flight
            broken = False
            while True:
                while not queue:
                    if done:
                        return
                    ready.clear()
                    await ready.wait()
                at, data = queue.popleft()
                wait = at - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    return
                flight -= len(data)
                if flight < pipe.bound:
                    room.set()
                if broken:
                    continue  # the far end is gone: drop what was in flight
                try:
                    writer.write(data)
                    await writer.drain()
                except (ConnectionError, OSError):
                    broken = True

        sender = asyncio.ensure_future(deliver())
        try:
            while data := await reader.read(CHUNK):
                if side == "up" and turn["last"] != "up":
                    self._stats.exchange(data)
                turn["last"] = side
                n = len(data)
                pipe.bytes += n
                if side == "up":
                    self._stats.up_bytes += n
                else:
                    self._stats.down_bytes += n
                now = self.loop.time()
                queue.append((pipe.departure(now, n) + pipe.delay, data))
                flight += n
                pipe.in_flight_max = max(pipe.in_flight_max, flight)
                ready.set()
                while flight >= pipe.bound:
                    room.clear()
                    await room.wait()
        except (ConnectionError, OSError):
            pass
        finally:
            done = True
            # Half-close after everything in flight has arrived (FIN crosses the link too).
            queue.append((self.loop.time() + pipe.delay, None))
            ready.set()
            await sender
            try:
                if writer.can_write_eof():
                    writer.write_eof()
                else:
                    writer.close()
            except (ConnectionError, OSError):
                writer.close()

    # -- control --------------------------------------------------------------------------
    def stats(self) -> dict:
        return self._call(self._get_stats())

    async def _get_stats(self) -> dict:
        return {
            **self._stats.as_dict(),
            "in_flight_max": max(self.up.in_flight_max, self.down.in_flight_max),
            "bound": max(self.up.bound, self.down.bound),
        }

    def reset(self) -> None:
        self.loop.call_soon_threadsafe(self._stats.reset)

    def cut(self) -> None:
        """The link goes down: open connections are reset, new ones refused."""
        self._call(self._cut())

    def restore(self) -> None:
        if self._server is None:
            self._call(self._relisten())

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()  # RST: data in flight is lost, as on a real cut
        self._writers.clear()

    async def _relisten(self) -> None:
        self._server = await asyncio.start_server(
            self._client, "127.0.0.1", self.port, reuse_address=True
        )

    def set_profile(self, profile: str | Profile) -> None:
        """Change delay and rate of the running link (open connections too)."""
        self._call(self._set_profile(resolve(profile, None, None)))

    async def _set_profile(self, profile: Profile) -> None:
        self.profile = profile
        for pipe in (self.up, self.down):
            pipe.configure(profile.delay, profile.rate)

    async def _close(self):
        await self._cut()
        await asyncio.sleep(0.05)  # let the pipes see their connections end
        tasks = [t for t in asyncio.all_tasks(self.loop) if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self._call(self._close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def _control(link: LinkEmulator) -> None:
    """`--control`: JSON lines on stdin ("stats", "reset", "cut", "restore",
    {"profile": {...}}), answers on stdout; stdin's end (the parent is gone) stops the link."""
    print(json.dumps({"port": link.port}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd == "stats":
            answer = link.stats()
        elif cmd == "reset":
            link.reset()
            answer = True
        elif cmd in ("cut", "restore"):
            getattr(link, cmd)()
            answer = True
        elif isinstance(cmd, dict) and "profile" in cmd:
            link.set_profile(Profile(**cmd["profile"]))
            answer = True
        else:
            break
        print(json.dumps(answer), flush=True)


class LinkProcess:
    """The same link in a process of its own, so it takes no CPU or GIL from the caller.
    It stops when closed, and by itself when this process goes away (its stdin closes)."""

    def __init__(
        self,
        target_port: int,
        port: int = 0,
        profile: str | Profile | None = None,
        *,
        delay: float | None = None,
        rate: float | None = None,
    ):
        self.profile = p = resolve(profile, delay, rate)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "bench.linkemu", str(target_port), f"--port={port}"]
        cmd += [f"--delay-ms={p.delay * 1e3}", f"--rate-mbit={p.rate * 8 / 1e6}", "--control"]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
        )
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            raise RuntimeError("link emulator process did not start")
        self.port = json.loads(line)["port"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _ask(self, cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"link emulator exited ({self.proc.poll()})")
        return json.loads(line)

    def stats(self) -> dict:
        return self._ask("stats")

    def reset(self) -> None:
        self._ask("reset")

    def cut(self) -> None:
        self._ask("cut")

    def restore(self) -> None:
        self._ask("restore")

    def set_profile(self, profile: str | Profile) -> None:
        self.profile = resolve(profile, None, None)
        self._ask({"profile": dataclasses.asdict(self.profile)})

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # EOF: the link closes and the process exits
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("target_port", type=int)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--profile", choices=sorted(PROFILES), default=None)
    ap.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay (no --profile)")
    ap.add_argument("--rate-mbit", type=float, default=0.0, help="Mbit/s each way, 0 = no cap")
    ap.add_argument("--control", action="store_true", help=argparse.SUPPRESS)  # LinkProcess
    args = ap.parse_args(argv)
    link = LinkEmulator(
        args.target_port,
        args.port,
        args.profile,
        delay=args.delay_ms / 1e3,
        rate=args.rate_mbit * 1e6 / 8,
    )
    if args.control:
        try:
            _control(link)
        finally:
            link.close()
        return
    p = link.profile
    print(
        f"link {p.name}: 127.0.0.1:{link.port} -> 127.0.0.1:{args.target_port}, "
        f"RTT {p.rtt * 1e3:.1f} ms, {p.rate * 8 / 1e6:.0f} Mbit/s each way (pid {os.getpid()})",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print(f"link stats: {link.stats()}", flush=True)
        link.close()


if __name__ == "__main__":
    main()
