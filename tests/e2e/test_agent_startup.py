"""What the in-process agent costs a program's start and exit, checked by
what it does rather than by timing (scripts/bench agent-startup prints the
figures): `sonde record --agent -- python -c pass` syncs no file (a
recording is written with synchronous=OFF, store/store.h), the launching
sonde waits on the program's exit instead of polling it with sleeps, and
the recorded program neither maps libcurl nor imports the tracer API
(sonde.tracing) until it exports or makes a span."""
import os
import re
import shutil
import subprocess
import pytest

from conftest import recording_meta, run_sonde

PY = "/usr/bin/python3"


def test_agent_start_and_exit_sync_nothing_and_never_poll(sonde_bin, tmp_path):
    assert shutil.which("strace"), "strace missing: run scripts/install-deps"
    out, log = str(tmp_path / "s.sonde"), str(tmp_path / "strace.log")
    # a sanitizer build's leak check cannot run under ptrace (strace): off
    # for this run only (every other test runs it)
    env = dict(os.environ)
    if "ASAN_OPTIONS" in env:
        env["ASAN_OPTIONS"] += ":detect_leaks=0"
    r = subprocess.run(["strace", "-f", "-qq", "-o", log,
                        "-e", "trace=execve,fsync,fdatasync,sync_file_range,nanosleep,clock_nanosleep",
                        sonde_bin, "record", "--agent", "-q", "-o", out, "--", PY, "-c", "pass"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    meta = recording_meta(out)
    assert meta["recorded_by"] == "agent" and "ticks" in meta, meta
    lines = open(log).read().splitlines()
    syncs = [l for l in lines if re.search(r"\b(fsync|fdatasync|sync_file_range)\(", l)]
    assert not syncs, "the recording was synced:\n" + "\n".join(syncs)
    sonde_pid = lines[0].split()[0]
    sleeps = [l for l in lines if l.split()[0] == sonde_pid and "nanosleep(" in l]
    assert not sleeps, "sonde slept while waiting for the program:\n" + "\n".join(sleeps)


def test_agent_loads_no_curl_and_no_tracer_until_used(sonde_bin, tmp_path):
    out = str(tmp_path / "s.sonde")
    prog = ("import sys\n"
            "maps = open('/proc/self/maps').read()\n"
            "print('agent', 'libsonde-agent' in maps, 'sonde' in sys.modules)\n"
            "print('start', 'libcurl' in maps, 'sonde.tracing' in sys.modules)\n"
            "import sonde\n"
            "with sonde.span('x'):\n"
            "    pass\n"
            "print('span', 'sonde.tracing' in sys.modules, sonde.span_stats()['ended'])\n")
    r = run_sonde(sonde_bin, "record", "--agent", "-q", "-o", out, "--", PY, "-c", prog, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["agent True True", "start False False", "span True 1"], r.stdout + r.stderr
    assert recording_meta(out)["recorded_by"] == "agent"


def test_agent_boot_imports_no_ctypes_until_greenlet(sonde_bin, tmp_path):
    """The greenlet hook that `sonde record --agent` installs in the program
    (sonde/boot/sitecustomize.py) imports ctypes only once greenlet is
    imported; the agent tells the program that it records through
    $SONDE_AGENT_RECORDING, its pid, which a child does not take for its own."""
    out = str(tmp_path / "s.sonde")
    prog = ("import os, subprocess, sys\n"
            "print('start', 'ctypes' in sys.modules, os.environ.get('SONDE_AGENT_RECORDING') == str(os.getpid()))\n"
            "print('finder', any(type(f).__name__ == '_Finder' for f in sys.meta_path))\n"
            "c = subprocess.run([sys.executable, '-c', 'import os, sys; "
            "print(os.environ.get(\"SONDE_AGENT_RECORDING\") == str(os.getpid()), "
            "any(type(f).__name__ == \"_Finder\" for f in sys.meta_path))'], capture_output=True, text=True)\n"
            "print('child', c.stdout.strip())\n")
    r = run_sonde(sonde_bin, "record", "--agent", "-q", "-o", out, "--", PY, "-c", prog, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["start False True", "finder True", "child False False"], r.stdout + r.stderr


def test_sonde_does_not_link_libcurl(sonde_bin):
    """Every sonde command starts without libcurl's twenty-odd libraries:
    the collector's forwarder loads it when it starts (common/curl_dl.h)."""
    r = subprocess.run(["readelf", "-d", sonde_bin], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    needed = re.findall(r"\(NEEDED\).*\[(.*)\]", r.stdout)
    assert needed and not [n for n in needed if "curl" in n], needed


def test_sonde_does_not_link_microhttpd(sonde_bin):
    """Every sonde command (`sonde record --agent` on the recorded program's
    start-up path among them) starts without libmicrohttpd and GnuTLS's
    libraries: the collector loads it when its HTTP server starts
    (collector/mhd_dl.h)."""
    r = subprocess.run(["readelf", "-d", sonde_bin], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    needed = re.findall(r"\(NEEDED\).*\[(.*)\]", r.stdout)
    assert needed and not [n for n in needed if "microhttpd" in n or "gnutls" in n], needed
