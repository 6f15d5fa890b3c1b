"""The suite itself: enough interpreters to prove anything, and every one
that find-pythons lists reports the version the parametrization claims."""
import subprocess

from conftest import ALL, SUPPORTED, SUPPORTED_FOUND, require_enough_versions


def test_enough_supported_versions():
    require_enough_versions()  # fails (not skips) with fewer than two


def test_discovered_versions_are_real():
    for it in ALL:
        out = subprocess.run([it.path, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
        assert out.startswith(it.version), (it, out)
    assert all(i.minor in SUPPORTED for i in SUPPORTED_FOUND)
