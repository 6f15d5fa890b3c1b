"""The reference docs cannot drift from the code: every subcommand that
`sonde --help` lists has a section in the man page (docs/sonde.1) naming
each long option of its own --help, every exit code the CLI defines is in
docs/exit-codes.md and in the man page, and the man page renders without
warnings."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT

MAN = ROOT / "docs" / "sonde.1"
EXIT_DOC = ROOT / "docs" / "exit-codes.md"


def sonde(sonde_bin, *args):
    r = subprocess.run([sonde_bin, *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def subcommands(sonde_bin):
    text = sonde(sonde_bin, "--help")
    block = text.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    names = [m.group(1) for m in re.finditer(r"^  ([a-z][a-z-]*)\b", block, re.M)]
    assert len(names) >= 9, text
    return names


def man_sections():
    """{command: text of its .SS section} from docs/sonde.1."""
    src = MAN.read_text()
    secs, cur = {}, None
    for line in src.splitlines():
        m = re.match(r'^\.SS "?sonde ([a-z][a-z-]*)', line)
        if m:
            cur = m.group(1)
            secs[cur] = ""
        elif line.startswith(".SH"):
            cur = None
        elif cur:
            secs[cur] += line + "\n"
    return secs


def test_every_subcommand_and_option_is_in_the_man_page(sonde_bin):
    secs = man_sections()
    for cmd in subcommands(sonde_bin):
        assert cmd in secs, "sonde --help lists '%s', docs/sonde.1 has no section for it" % cmd
        if cmd == "version":
            continue
        # roff writes '-' as '\-'
        text = secs[cmd].replace("\\-", "-")
        opts = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", sonde(sonde_bin, cmd, "--help")))
        missing = sorted(o for o in opts if o not in text and o != "--help")
        assert not missing, "docs/sonde.1, section %s, lacks %s" % (cmd, ", ".join(missing))


def exit_constants():
    """{name: value} of the EXIT_ constants that cli/ defines."""
    consts = {}
    for path in (ROOT / "cli").glob("*.h"):
        for m in re.finditer(r"\b(EXIT_[A-Z]+)\s*=\s*(\d+)", path.read_text()):
            consts[m.group(1)] = int(m.group(2))
    assert "EXIT_OK" in consts and "EXIT_BADFILE" in consts, consts
    return consts


def test_every_exit_code_is_documented():
    consts = exit_constants()
    used = set()
    for path in (ROOT / "cli").glob("*.[ch]"):
        used |= set(re.findall(r"\bEXIT_[A-Z]+\b", path.read_text()))
    assert used <= set(consts), "used but not defined in cli/: %s" % sorted(used - set(consts))
    doc = EXIT_DOC.read_text()
    rows = {m.group(2): int(m.group(1)) for m in re.finditer(r"^\| (\d+) \| `(EXIT_[A-Z]+)` \|", doc, re.M)}
    assert rows == consts, "docs/exit-codes.md %s, cli/ %s" % (rows, consts)
    status = MAN.read_text().split(".SH EXIT STATUS", 1)[1].split("\n.SH", 1)[0]
    codes = {int(c) for c in re.findall(r"^\.B (\d+)$", status, re.M)}
    assert codes == set(consts.values()), "docs/sonde.1 EXIT STATUS lists %s" % sorted(codes)


def man_warnings(page):
    r = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8"))
    return r


def test_man_page_renders_without_warnings(tmp_path):
    assert shutil.which("man"), "man is not installed (scripts/install-deps installs man-db)"
    r = man_warnings(MAN)
    assert r.returncode == 0 and not r.stderr, r.stderr
    assert "sonde dump -p PID" in r.stdout and "EXIT STATUS" in r.stdout, r.stdout[:2000]
    # the check itself sees a broken page
    bad = tmp_path / "bad.1"
    bad.write_text(MAN.read_text().replace(".SH EXAMPLES", ".XX not-a-macro\n.SH EXAMPLES"))
    assert "not defined" in man_warnings(bad).stderr


@pytest.mark.parametrize("doc", ["README.md", "docs/export.md", "docs/file-format.md", "docs/store-spans.md",
                                 "docs/tui.md", "docs/exit-codes.md"])
def test_doc_references_point_somewhere(doc):
    """Every docs/ page, and sonde(1), that a doc names exists."""
    text = (ROOT / doc).read_text()
    for ref in set(re.findall(r"\bdocs/[A-Za-z0-9_.-]*[A-Za-z0-9_]", text)):
        assert (ROOT / ref).exists(), "%s names %s, which does not exist" % (doc, ref)
    if "sonde(1)" in text:
        assert MAN.exists()
