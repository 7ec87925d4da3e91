"""A real single-node Slurm cluster that the tests start and stop themselves.

Debian's `slurm-wlm` and `munge`: a munge key and socket of its own, a `slurm.conf` with this
host's name as the only node and ports of its own, state and spool dirs under a temp dir.
Nothing system-wide is touched; the clients find it through `SLURM_CONF` (see `env`), and
`stop` ends the three daemons by the PIDs it started. A requeued job may start again once
`cred_expire` has passed (10 s here, default 120), and what starts it then is the backfill
scheduler, every `bf_interval` (1 s here, default 30): the requeue test waited on both.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .servers import free_port

DAEMONS = ("munged", "slurmctld", "slurmd")


def missing() -> str | None:
    """Why no cluster can start here (None: it can)."""
    absent = [d for d in (*DAEMONS, "sbatch", "squeue", "scontrol") if _which(d) is None]
    if absent:
        return (f"Slurm is not installed here (no {', '.join(absent)}): apt-get install -y "
                "slurm-wlm munge")
    if os.geteuid() != 0:
        return "the test Slurm cluster runs its daemons as root (SlurmUser=root)"
    return None


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


class SlurmCluster:
    """munged + slurmctld + slurmd for one node; `env` is what a client needs."""

    def __init__(self, root: Path, cpus: int | None = None) -> None:
        self.root = root
        self.cpus = cpus or os.cpu_count() or 2
        self.conf = root / "slurm.conf"
        self.socket = root / "munge" / "munge.socket"
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self) -> None:
        for sub in ("munge", "state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._write_conf()
        m = self.root / "munge"
        self._spawn([_which("munged"), "-F", "-f", f"--socket={self.socket}", f"--key-file={key}",
                     f"--pid-file={m / 'munged.pid'}", f"--seed-file={m / 'munged.seed'}",
                     f"--log-file={m / 'munged.log'}"])
        self._wait(lambda: self.socket.exists(), "munged")
        self._spawn([_which("slurmctld"), "-D", "-f", str(self.conf)])
        self._spawn([_which("slurmd"), "-D", "-f", str(self.conf)])
        self._wait(self._node_idle, "slurmctld and slurmd (node idle)")

    def _write_conf(self) -> None:
        r = self.root
        host = socket.gethostname()
        self.conf.write_text(f"""\
ClusterName=sweepstest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.socket},cred_expire=10
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'slurmctld.pid'}
SlurmdPidFile={r / 'slurmd.pid'}
SlurmctldLogFile={r / 'log' / 'slurmctld.log'}
SlurmdLogFile={r / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MpiDefault=none
KillWait=10
MinJobAge=600
NodeName={host} NodeAddr=127.0.0.1 NodeHostname={host} CPUs={self.cpus} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")

    def _spawn(self, cmd: list[str | None]) -> None:
        log = open(self.root / "log" / f"{Path(str(cmd[0])).name}.out", "wb")  # noqa: SIM115
        self.procs.append(subprocess.Popen([str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT,
                                           env=self.env, start_new_session=True))

    def _node_idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=self.env)
        return out.returncode == 0 and out.stdout.strip() == "idle"

    def _wait(self, ready: object, what: str, timeout: float = 60.0) -> None:
        end = time.time() + timeout
        while time.time() < end:
            dead = [p.args[0] for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead} exited: see {self.root / 'log'}")
            if ready():  # type: ignore[operator]
                return
            time.sleep(0.3)
        raise TimeoutError(f"{what} not ready within {timeout:.0f} s: see {self.root / 'log'}")

    def _jobs_left(self) -> bool:
        out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, env=self.env)
        return out.returncode == 0 and bool(out.stdout.strip())

    def job_ids(self) -> set[str]:
        """Every job this cluster's controller knows, finished ones too."""
        out = subprocess.run(["squeue", "-h", "--states=all", "-o", "%F"], capture_output=True, text=True,
                             env=self.env)
        return set(out.stdout.split())

    def squeue(self, job_id: str) -> list[tuple[str, str]]:
        out = subprocess.run(["squeue", "-h", "-r", "-j", job_id, "--states=all", "-o", "%i|%T"],
                             capture_output=True, text=True, env=self.env)
        return [tuple(line.split("|", 1)) for line in out.stdout.split()]  # type: ignore[misc]

    def stop(self) -> None:
        # this cluster's own jobs first (its controller knows no other), then its daemons
        subprocess.run(["scancel", "--full", "--user=root"], capture_output=True, env=self.env, timeout=30)
        end = time.time() + 30
        while time.time() < end and self._jobs_left():
            time.sleep(0.5)
        for proc in reversed(self.procs):  # slurmd, slurmctld, munged: by the PIDs started here
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
