"""The folders are the layers (docs/architecture.md): a module includes only
modules below it, so the dependency arrows cannot turn around unnoticed.
Checks every #include "dir/..." of every C file under the source folders,
and that no C file outside generated code grows past 900 lines."""
import re

from conftest import ROOT

# what each folder may include (itself always)
ALLOWED = {
    "common": set(),
    "tracer": {"common"},
    "spans": {"common"},
    "store": {"common", "spans"},
    "profiler": {"common", "tracer", "store"},
    "agent": {"common", "tracer", "spans", "store", "profiler"},
    "collector": {"common", "spans", "store"},
    "formats": {"common", "profiler", "spans"},
    "ui": {"common", "profiler", "spans", "store", "formats"},
    "cli": {"common", "tracer", "profiler", "spans", "store", "collector", "formats", "ui"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/', re.M)


def sources():
    for top in ALLOWED:
        for p in sorted((ROOT / top).rglob("*.[ch]")):
            yield top, p


def test_includes_follow_the_layers():
    bad = []
    for top, p in sources():
        for m in INCLUDE.finditer(p.read_text(errors="replace")):
            dep = m.group(1)
            if dep != top and dep in ALLOWED and dep not in ALLOWED[top]:
                bad.append("%s includes %s/" % (p.relative_to(ROOT), dep))
    assert not bad, "\n".join(bad)
    # the check sees includes at all (a broken pattern would pass everything)
    assert any(INCLUDE.search(p.read_text()) for _, p in sources())


def test_no_c_file_over_900_lines():
    big = []
    for top, p in sources():
        if p.name.endswith("_gen.c"):
            continue  # generated layout tables (scripts/gen-layouts)
        n = p.read_text(errors="replace").count("\n")
        if n > 900:
            big.append("%s: %d lines" % (p.relative_to(ROOT), n))
    assert not big, "\n".join(big)
