"""A real Redis for the fleet tests: finds ``redis-server`` (``scripts/ensure-redis.sh`` installs
Debian's package), starts it on a free 127.0.0.1 port with no persistence, and stops it by its
process id. Every wait is bounded in count and time."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import List, Optional


def find_server() -> Optional[str]:
    return os.environ.get("REDIS_SERVER") or shutil.which("redis-server")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ping(port: int, timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            s.settimeout(timeout_s)
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process of this test run."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="failover-redis-")
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.extra_args: List[str] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no", *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(100):  # at most ~10 s
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            if _ping(self.port):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        os.kill(p.pid, signal.SIGCONT)  # a stopped process would not see SIGTERM
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(5)

    def restart_empty(self) -> None:
        """Stops the server and starts a new, empty one on the same port."""
        self.stop()
        self.start()


class RedisClusterServers:
    """A small local Redis Cluster of this test run: ``n`` masters (no replicas), each a
    ``redis-server --cluster-enabled yes`` on a free 127.0.0.1 port with its own directory and
    no persistence, the 16 384 slots split evenly between them (``CLUSTER ADDSLOTSRANGE``) and
    joined with ``CLUSTER MEET``. Stopped by process id. Every wait is bounded in count and time.
    Needs redis-py (the cluster is formed through it) and Redis 7 (``ADDSLOTSRANGE``)."""

    def __init__(self, binary: str, n: int = 3) -> None:
        self.nodes = [RedisServer(binary) for _ in range(n)]

    @property
    def ports(self) -> List[int]:
        return [s.port for s in self.nodes]

    def start(self) -> None:
        import redis

        # Each node's cluster bus on a free port of its own (by default port + 10 000, which may
        # be taken or past 65 535).
        bus = [free_port() for _ in self.nodes]
        for s, b in zip(self.nodes, bus):
            s.extra_args = ["--cluster-enabled", "yes", "--cluster-config-file",
                            os.path.join(s.dir, "nodes.conf"), "--cluster-node-timeout", "2000",
                            "--cluster-port", str(b)]
            s.start()
        clients = [redis.Redis(port=p, socket_timeout=5) for p in self.ports]
        try:
            n = len(clients)
            for i, c in enumerate(clients):
                c.execute_command("CLUSTER", "ADDSLOTSRANGE", i * 16384 // n, (i + 1) * 16384 // n - 1)
            for p, b in zip(self.ports[1:], bus[1:]):
                clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", p, b)
            for _ in range(200):  # at most ~20 s
                infos = [c.execute_command("CLUSTER", "INFO") for c in clients]
                texts = [i.decode() if isinstance(i, bytes) else str(i) for i in infos]
                if all("cluster_state:ok" in t and f"cluster_known_nodes:{n}" in t for t in texts):
                    return
                time.sleep(0.1)
            raise RuntimeError("the cluster did not reach cluster_state:ok within 20 s")
        except BaseException:
            self.stop()
            raise
        finally:
            for c in clients:
                c.close()

    def stop(self) -> None:
        for s in self.nodes:
            s.stop()
