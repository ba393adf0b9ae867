"""A real single-node SLURM cluster on this machine, for tests: munged, slurmctld and slurmd.

Debian's ``slurm-wlm`` 22.05 (packages ``slurmctld slurmd slurm-client munge``), configured so that
it needs nothing a container lacks and nothing slow:

- no cgroups: ``ProctrackType=proctrack/linuxproc``, ``TaskPlugin=task/none``;
- no slurmdbd: ``AccountingStorageType=accounting_storage/none``, so plain ``sacct`` refuses;
  ``JobCompType=jobcomp/filetxt`` writes one line per finished job, which ``sacct -c`` reads;
- ``DefMemPerCPU`` (else a job without ``--mem`` takes the whole node's memory) and
  ``SchedulerParameters=batch_sched_delay=0,sched_min_interval=0`` (jobs start at once);
- the config at ``/etc/slurm/slurm.conf`` (where every client looks), state and logs in a
  temporary directory; munged runs as the ``munge`` user.

Everything is bounded by timeouts, and :meth:`SlurmCluster.stop` ends exactly the daemons that
:meth:`SlurmCluster.start` started (by process id). A config at ``/etc/slurm/slurm.conf`` that this
module did not write is never touched: the cluster then refuses to start (a real SLURM installation
is not ours to reconfigure). Concurrent test sessions on one machine take turns through a file lock.

Usable by hand, for trying the workflow's SLURM profile::

    python tests/slurm_cluster.py up /tmp/slurm      # prints how to use it; Ctrl-C stops it
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sacct", "sinfo", "scontrol", "srun", "munge", "unmunge")
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"

CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# Written by notewise tests/slurm_cluster.py; removed when its cluster stops."
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_RUN = Path("/run/munge")
LOCK = Path("/tmp/notewise-slurm-cluster.lock")
#: pids of the daemons the running (or a crashed) cluster of this module started.
PID_REGISTRY = Path("/tmp/notewise-slurm-cluster.pids")


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be installed or started here; the message says why (a skip reason)."""


def _which(name: str) -> str | None:
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:{SBIN_PATH}")


def missing_binaries() -> list[str]:
    return [name for name in (*DAEMONS, *CLIENTS) if _which(name) is None]


def install(timeout: float = 600) -> None:
    """Install the Debian packages if a binary is missing. Raises :class:`SlurmUnavailable`."""
    missing = missing_binaries()
    if not missing:
        return
    reason = f"SLURM binaries missing ({', '.join(missing)})"
    if os.geteuid() != 0:
        raise SlurmUnavailable(f"{reason} and not root, cannot apt-get install {' '.join(PACKAGES)}")
    if _which("apt-get") is None:
        raise SlurmUnavailable(f"{reason} and no apt-get to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    deadline = time.monotonic() + timeout
    for step in ([], [["apt-get", "update", "-q"]]):  # first try without an update, then with one
        try:
            for pre in step:
                subprocess.run(pre, env=env, capture_output=True, text=True, check=True,
                               timeout=max(1.0, deadline - time.monotonic()))
            subprocess.run(command, env=env, capture_output=True, text=True, check=True,
                           timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise SlurmUnavailable(f"{reason}; apt-get did not finish within {timeout:.0f} s") from None
        except subprocess.CalledProcessError as err:
            failure = (err.stderr or err.stdout or "").strip().splitlines()[-3:]
            continue
        if not missing_binaries():
            return
        failure = [f"still missing after install: {', '.join(missing_binaries())}"]
    raise SlurmUnavailable(f"{reason}; apt-get install {' '.join(PACKAGES)} failed: {' | '.join(failure)}")


def _run(args: list[str], timeout: float = 20, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=check)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our child, exited, not yet reaped) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _end(pid: int, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; only this pid."""
    if not _alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _end_stale_daemons() -> None:
    """End daemons a crashed earlier cluster of this module left behind (recorded by pid)."""
    if not PID_REGISTRY.exists():
        return
    for line in PID_REGISTRY.read_text().split():
        pid = int(line) if line.isdigit() else 0
        if pid and any(name in _cmdline(pid) for name in DAEMONS):
            _end(pid, grace=5)
    PID_REGISTRY.unlink(missing_ok=True)
    if CONF.exists() and MARKER in CONF.read_text():
        CONF.unlink()


@dataclass(frozen=True)
class Node:
    name: str
    line: str  # the NodeName=... line of slurm.conf
    cpus: int
    memory_mb: int


def probe_node() -> Node:
    """This machine as a SLURM node (``slurmd -C``), memory lowered a little so it never drains."""
    out = _run([_which("slurmd") or "slurmd", "-C"], timeout=20).stdout
    line = next(x for x in out.splitlines() if x.startswith("NodeName="))
    fields = dict(item.split("=", 1) for item in line.split())
    name = _run(["hostname", "-s"]).stdout.strip() or fields["NodeName"]
    memory = int(int(fields.get("RealMemory", "1024")) * 0.9)
    fields.update(NodeName=name, RealMemory=str(memory))
    return Node(name=name, line=" ".join(f"{k}={v}" for k, v in fields.items()),
                cpus=int(fields["CPUs"]), memory_mb=memory)


class SlurmCluster:
    """munged + slurmctld + slurmd, state under ``root``; use as a context manager."""

    def __init__(self, root: Path, *, def_mem_per_cpu: int = 512, partition: str = "debug"):
        self.root = Path(root)
        self.def_mem_per_cpu = def_mem_per_cpu
        self.partition = partition
        self.jobcomp = self.root / "jobcomp.txt"
        self.node: Node | None = None
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock_fd: int | None = None
        self._wrote_conf = False

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, timeout: float = 60, lock_timeout: float = 900) -> "SlurmCluster":
        """Install if needed and possible, write the config, start the daemons, wait for the node.

        Raises :class:`SlurmUnavailable` (with the reason) when that cannot be done.
        """
        if os.geteuid() != 0:
            raise SlurmUnavailable("starting slurmctld/slurmd/munged needs root")
        install()
        self._lock(lock_timeout)
        try:
            _end_stale_daemons()
            if CONF.exists() and MARKER not in CONF.read_text():
                raise SlurmUnavailable(f"{CONF} exists and was not written by this test: "
                                       "refusing to reconfigure a real SLURM installation")
            self.root.mkdir(parents=True, exist_ok=True)
            for sub in ("state", "spool"):
                (self.root / sub).mkdir(exist_ok=True)
            self.node = probe_node()
            self._start_munge(timeout)
            CONF.parent.mkdir(parents=True, exist_ok=True)
            CONF.write_text(self.config_text())
            self._wrote_conf = True
            self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i"])
            self._spawn("slurmd", [_which("slurmd"), "-D"])
            self._wait_for_node(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """End the daemons this cluster started (slurmd, slurmctld, munged), remove its config."""
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self._procs.pop(name, None)
            if proc is not None:
                _end(proc.pid)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        if self._wrote_conf and CONF.exists() and MARKER in CONF.read_text():
            CONF.unlink()
        self._wrote_conf = False
        PID_REGISTRY.unlink(missing_ok=True)
        self._unlock()

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- configuration ----------------------------------------------------------------------
    def config_text(self) -> str:
        node, r = self.node, self.root
        return "\n".join([
            MARKER,
            "ClusterName=notewise",
            f"SlurmctldHost={node.name}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            "MpiDefault=none",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            # no cgroups (containers, CI runners): track processes through /proc, bind nothing
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            # no slurmdbd: finished jobs go to a text file that `sacct -c` reads
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={self.jobcomp}",
            # start jobs at once; memory is a consumable resource with a per-CPU default
            "SchedulerType=sched/backfill",
            "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            f"DefMemPerCPU={self.def_mem_per_cpu}",
            "ReturnToService=2",
            "MinJobAge=300",  # finished jobs stay visible to squeue for 5 minutes
            "SlurmctldTimeout=30",
            "SlurmdTimeout=30",
            "InactiveLimit=0",
            "KillWait=5",
            "Waittime=0",
            node.line + " State=UNKNOWN",
            f"PartitionName={self.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
            "",
        ])

    # -- queries ----------------------------------------------------------------------------
    def completed_jobs(self, timeout: float = 20) -> list[dict[str, str]]:
        """Finished jobs from the job-completion log, through ``sacct -c``: one dict per job."""
        fields = "JobID,JobName,State,ExitCode,NodeList,AllocCPUS,Start,End"
        out = _run([_which("sacct"), "-c", "--parsable2", "--noheader", f"--format={fields}"],
                   timeout=timeout).stdout
        keys = fields.split(",")
        return [dict(zip(keys, line.split("|"))) for line in out.splitlines() if line.strip()]

    def logs(self) -> str:
        """The daemons' logs, for failure messages."""
        parts = []
        for name in ("slurmctld.log", "slurmd.log", "munged.out", "slurmctld.out", "slurmd.out"):
            path = self.root / name
            if path.exists():
                parts.append(f"==> {path} <==\n" + "\n".join(path.read_text(errors="replace").splitlines()[-40:]))
        return "\n".join(parts)

    # -- internals --------------------------------------------------------------------------
    def _lock(self, timeout: float) -> None:
        fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise SlurmUnavailable(f"another test session held {LOCK} for {timeout:.0f} s")
                time.sleep(0.5)
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        out = open(self.root / f"{name}.out", "ab")
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        out.close()
        self._procs[name] = proc
        with open(PID_REGISTRY, "a") as fh:
            fh.write(f"{proc.pid}\n")
        return proc

    def _munge_works(self) -> bool:
        try:
            cred = _run([_which("munge"), "-n"], timeout=5)
            check = subprocess.run([_which("unmunge")], input=cred.stdout, capture_output=True,
                                   text=True, timeout=5)
            return check.returncode == 0
        except (subprocess.SubprocessError, OSError):
            return False

    def _start_munge(self, timeout: float) -> None:
        if self._munge_works():
            return  # a munged is already serving this machine (its key is the one slurm uses)
        if not MUNGE_KEY.exists():
            _run([_which("mungekey") or "mungekey", "--create", "--keyfile", str(MUNGE_KEY)], timeout=20)
        for path in (MUNGE_KEY, MUNGE_KEY.parent):
            shutil.chown(path, "munge", "munge")
        MUNGE_KEY.chmod(0o600)
        MUNGE_RUN.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_RUN, "munge", "munge")
        MUNGE_RUN.chmod(0o755)
        for path in (Path("/var/lib/munge"), Path("/var/log/munge")):
            path.mkdir(parents=True, exist_ok=True)
            shutil.chown(path, "munge", "munge")
        self._spawn("munged", [_which("runuser"), "-u", "munge", "--", _which("munged"), "--foreground"])
        deadline = time.monotonic() + timeout
        while not self._munge_works():
            proc = self._procs["munged"]
            if proc.poll() is not None:
                raise SlurmUnavailable(f"munged exited with {proc.returncode}:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise SlurmUnavailable(f"munged did not answer within {timeout:.0f} s:\n{self.logs()}")
            time.sleep(0.05)

    def _wait_for_node(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            for name in ("slurmctld", "slurmd"):
                proc = self._procs[name]
                if proc.poll() is not None:
                    raise SlurmUnavailable(f"{name} exited with {proc.returncode}:\n{self.logs()}")
            try:
                state = _run([_which("sinfo"), "-h", "-N", "-o", "%T"], timeout=10, check=False).stdout.strip()
            except subprocess.TimeoutExpired:
                state = "(sinfo timed out)"
            if state in ("idle", "mixed", "allocated"):
                return
            time.sleep(0.1)
        raise SlurmUnavailable(f"node not idle within {timeout:.0f} s (state {state!r}):\n{self.logs()}")


def _main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] != "up":
        print(__doc__.split("Usable by hand")[-1])
        return 2
    cluster = SlurmCluster(Path(argv[2]))
    started = time.monotonic()
    with cluster:
        print(f"SLURM up in {time.monotonic() - started:.2f} s: node {cluster.node.name}, "
              f"{cluster.node.cpus} CPUs, {cluster.node.memory_mb} MB; state in {cluster.root}; "
              "Ctrl-C (or SIGTERM) stops it.", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            while all(p.poll() is None for p in cluster._procs.values()):
                time.sleep(1)
            print("a daemon exited:\n" + cluster.logs(), file=sys.stderr)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
