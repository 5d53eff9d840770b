"""A private one-node SLURM cluster on localhost, for the cluster test.

Debian's ``slurm-wlm`` and ``munge`` (installed with apt-get when absent, as root)
run as plain foreground processes started here: a munged with its own key and
socket, slurmctld and ``slurmd -N localhost``, all configured by a ``slurm.conf``
in a private folder (free ports, no cgroups, no accounting database). Nothing of
the machine's own SLURM or munge configuration is read or changed: clients find
the cluster through the ``SLURM_CONF`` variable of :attr:`LocalSlurm.env`.
:meth:`LocalSlurm.stop` ends exactly the processes started here, by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.debian import apt_install

#: Debian packages providing the daemons and the clients (sbatch, squeue, ...).
PACKAGES = ("slurm-wlm", "munge")
#: Programs that must be found once the packages are installed.
PROGRAMS = (
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "srun",
    "squeue",
    "sinfo",
    "scontrol",
)
SBIN = ("/usr/sbin", "/usr/bin")
NODE = "localhost"
PARTITION = "debug"


def which(program: str) -> str | None:
    """Path of ``program`` in PATH or the system's sbin folders."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    return shutil.which(program, path=path)


def missing_programs() -> list[str]:
    return [program for program in PROGRAMS if which(program) is None]


def install() -> None:
    """Install the Debian packages (root only); services are kept from starting."""
    apt_install(PACKAGES)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mem_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 - 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


SLURM_CONF = """\
# written by tests/cluster/slurm_localhost.py: one node, no cgroups, no accounting
ClusterName=sparseconntest
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={dir}/munge.sock
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# finished jobs stay visible to `squeue --states=all` (the status command used)
MinJobAge=3600
KillWait=5
MessageTimeout=5
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmdSpoolDir={dir}/slurmd
StateSaveLocation={dir}/slurmctld
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName={partition} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


class LocalSlurm:
    """Start, use and stop a private SLURM cluster.

    Attributes
    ----------
    folder : Path
        Configuration, state, logs and the munge socket (world-traversable: munge
        requires it).
    env : dict
        The environment of clients of this cluster (``SLURM_CONF`` set).
    pids : dict
        Name -> PID of every daemon started here.
    """

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sparseconn-slurm-"))
        self.folder.chmod(0o755)
        self.conf = self.folder / "slurm.conf"
        # The jobstep plugin runs each job's command with `srun` after removing
        # every SLURM_* variable but the job's identity, SLURM_CONF included: an
        # `srun` first on PATH (inherited by jobs) sets it again for this cluster.
        clients = self.folder / "bin"
        clients.mkdir()
        srun = clients / "srun"
        srun.write_text(
            f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec {which("srun")} "$@"\n'
        )
        srun.chmod(0o755)
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.env["PATH"] = os.pathsep.join(
            [str(clients), self.env.get("PATH", ""), *SBIN]
        )
        self.pids: dict[str, int] = {}
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    # ------------------------------------------------------------------ start
    def start(self, timeout: float = 60) -> None:
        """Write the configuration, start the daemons, wait for an idle node."""
        for sub in ("slurmd", "slurmctld"):
            (self.folder / sub).mkdir()
        key = self.folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.conf.write_text(
            SLURM_CONF.format(
                dir=self.folder,
                ctld_port=free_port(),
                slurmd_port=free_port(),
                node=NODE,
                partition=PARTITION,
                cpus=os.cpu_count(),
                mem_mb=_mem_mb(),
            )
        )
        folder = self.folder
        self._spawn(
            "munged",
            [
                "munged", "--foreground", f"--socket={folder}/munge.sock",
                f"--key-file={key}", f"--pid-file={folder}/munged.pid",
                f"--log-file={folder}/munged.log", f"--seed-file={folder}/munge.seed",
            ],
        )  # fmt: skip
        self._wait(lambda: (folder / "munge.sock").exists(), "munged's socket", 10)
        self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-f", str(self.conf)])
        self._wait(self._controller_up, "slurmctld answering", timeout)
        self._spawn("slurmd", ["slurmd", "-D", "-N", NODE, "-f", str(self.conf)])
        self._wait(self._node_idle, f"node {NODE} idle", timeout)

    def _spawn(self, name: str, command: list[str]) -> None:
        with open(self.folder / f"{name}.out", "wb") as out:
            process = subprocess.Popen(
                [which(command[0]) or command[0], *command[1:]],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._processes[name] = process
        self.pids[name] = process.pid

    def _wait(self, ready, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for name, process in self._processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited early:\n{self.logs(name)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}:\n{self.logs()}")
            time.sleep(0.2)

    def _controller_up(self) -> bool:
        return self.run("scontrol", "ping", check=False).returncode == 0

    def _node_idle(self) -> bool:
        state = self.run("sinfo", "-h", "-n", NODE, "-o", "%t", check=False)
        return state.stdout.strip().rstrip("*~#") in ("idle", "mix", "alloc")

    # ------------------------------------------------------------------ use
    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a SLURM client command against this cluster."""
        return subprocess.run(
            list(command),
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=30,
        )

    def jobs(self) -> list[dict[str, str]]:
        """Every job the controller knows, finished ones included."""
        fields = ["id", "name", "state", "comment", "cpus", "memory"]
        out = self.run("squeue", "--states=all", "-h", "-o", "%i|%j|%T|%k|%C|%m").stdout
        return [
            dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines()
        ]

    def logs(self, *names: str) -> str:
        """The tail of the daemons' logs."""
        names = names or ("munged", "slurmctld", "slurmd")
        text = []
        for name in names:
            for path in (self.folder / f"{name}.out", self.folder / f"{name}.log"):
                if path.is_file():
                    text.append(f"--- {path}\n" + path.read_text()[-2000:])
        return "\n".join(text)

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """Cancel remaining jobs, end the daemons started here (by PID), clean up."""
        controller = self._processes.get("slurmctld")
        if controller is not None and controller.poll() is None:
            ids = self.run("squeue", "-h", "-o", "%i", check=False).stdout.split()
            if ids:
                self.run("scancel", *ids, check=False)
        for name in ("slurmd", "slurmctld", "munged"):
            process = self._processes.pop(name, None)
            if process is None:
                continue
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
