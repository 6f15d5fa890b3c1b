"""A Python newer than sonde knows is refused with exit 6 and its version in
the message; 3.14 is read only through its own _Py_DebugOffsets. No such
interpreter can be installed here, so the test makes one look newer: a copy
of a 3.13 libpython whose Py_Version (the version sonde reads from the
target) says 3.14.0 or 3.15.0, preloaded into a 3.13 interpreter."""
import shutil
import subprocess

import pytest

from conftest import EXIT_UNSUPPORTED, SUPPORTED_FOUND, run_sonde


def _lib313():
    for it in SUPPORTED_FOUND:
        if it.minor == (3, 13) and it.shared and it.libdir and it.ldlibrary:
            return it
    return None


def file_offset(lib, symbol):
    """Where the dynamic symbol's bytes are in the file (its LOAD segment)."""
    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True,
                         check=True).stdout
    addr = next(int(l.split()[0], 16) for l in out.splitlines() if l.split()[-1] == symbol)
    segs = subprocess.run(["readelf", "-lW", lib], capture_output=True, text=True,
                          check=True).stdout
    for l in segs.splitlines():
        f = l.split()
        if f and f[0] == "LOAD":
            off, vaddr, filesz = int(f[1], 16), int(f[2], 16), int(f[4], 16)
            if vaddr <= addr < vaddr + filesz:
                return addr - vaddr + off
    raise AssertionError("%s not in a LOAD segment of %s" % (symbol, lib))


@pytest.mark.parametrize("hexversion,version,why", [
    (0x030F00F0, "3.15.0", "sonde reads 2.7 and 3.6 to 3.14"),
    (0x030E00F0, "3.14.0", "no _Py_DebugOffsets of its version"),
])
def test_newer_version_refused(sonde_bin, start_target, tmp_path, hexversion, version, why):
    it = _lib313()
    # the machine's pyenv 3.13 (a shared libpython) is part of what the tests need
    assert it is not None, "no CPython 3.13 with a shared libpython: the test needs one to patch"
    src = "%s/%s" % (it.libdir, it.ldlibrary)
    out = subprocess.run(["readelf", "-dW", src], capture_output=True, text=True).stdout
    soname = [l for l in out.splitlines() if "SONAME" in l][0].split("[")[1].rstrip("]")
    lib = str(tmp_path / soname)
    shutil.copyfile(src, lib)
    off = file_offset(lib, "Py_Version")
    with open(lib, "r+b") as f:
        f.seek(off)
        assert int.from_bytes(f.read(4), "little") >> 16 == 0x030D
        f.seek(off)
        f.write(hexversion.to_bytes(4, "little"))
    t = start_target([it.path, "-c", "print('ready', flush=True); import time; time.sleep(60)"],
                     env={"LD_PRELOAD": lib, "PATH": "/usr/bin:/bin"})
    maps = open("/proc/%d/maps" % t.pid).read()
    assert lib in maps, "the patched libpython is not the one loaded"
    for cmd in (("dump", "-p", t.pid), ("record", "-d", "0.2", "-o", tmp_path / "x.sonde",
                                        "-p", t.pid)):
        r = run_sonde(sonde_bin, *cmd)
        assert r.returncode == EXIT_UNSUPPORTED, (r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert "unsupported Python version %s in process %d" % (version, t.pid) in lines[0], \
            lines[0]
        assert why in lines[0], lines[0]
