"""python -m sonde [-o FILE] [-r HZ] [-d S] [-q] (script.py | -m module) [ARGS...]

Run a Python program with sonde's agent recording it (see sonde/__init__.py).
The program gets its own argv, exit code and output; sonde adds one line on
stderr when the recording is finished (none with -q)."""
import os
import runpy
import sys

import sonde

USAGE = "usage: python -m sonde [-o FILE] [-r HZ] [-d SECONDS] [-q] (script.py | -m module) [ARGS...]"


def _fail(msg):
    sys.stderr.write("sonde: %s\n%s\n" % (msg, USAGE))
    sys.exit(2)


def main(argv):
    out, rate, duration, quiet = None, 100, 0.0, False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            print(USAGE)
            return 0
        if a in ("--native", "--native-all"):
            # the agent reads its own process without stopping threads:
            # native stacks need sonde outside it (ptrace)
            _fail("%s is out-of-process only: use sonde record --native (not --agent)" % a)
        if a == "-q":
            quiet = True
            i += 1
            continue
        if a in ("-o", "-r", "-d"):
            if i + 1 >= len(argv):
                _fail("option %s needs a value" % a)
            v = argv[i + 1]
            try:
                if a == "-o":
                    out = v
                elif a == "-r":
                    rate = int(v)
                    if not 1 <= rate <= 10000:
                        raise ValueError
                else:
                    duration = float(v)
                    if not duration >= 0:
                        raise ValueError
            except ValueError:
                _fail("bad value for %s: %r" % (a, v))
            i += 2
            continue
        break
    rest = argv[i:]
    if not rest:
        _fail("give a script or -m module")
    module = None
    if rest[0] == "-m":
        if len(rest) < 2:
            _fail("-m needs a module name")
        module, args = rest[1], rest[2:]
    elif rest[0].startswith("-"):
        _fail("unknown option %s" % rest[0])
    else:
        script, args = rest[0], rest[1:]
    path = os.path.abspath(out or "sonde-%d.sonde" % os.getpid())
    started = []
    if not quiet:
        import atexit
        # registered before start() registers the stop: atexit runs them in
        # reverse, so this line comes once the file is finished
        atexit.register(lambda: started and sys.stderr.write("sonde: wrote %s\n" % path))
    try:
        sonde.start(output=path, rate=rate, duration=duration)
        started.append(1)
    except OSError as e:
        sys.stderr.write("%s\n" % e.strerror)
        return 1
    if module is not None:
        sys.argv = [module] + args
        sys.path[0] = os.getcwd()
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [script] + args
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
