"""A code object freed while sonde records, and a new one at the same address.

Runs alpha_fn for SECONDS, frees its code object, then compiles functions
named beta_fn until one's code object lands at alpha_fn's old address
(pymalloc hands back the block just freed), and runs beta_fn for SECONDS.
Prints JSON {"reused": bool, "alpha_line": n, "beta_line": n} before beta_fn
runs, then "ready" once alpha_fn runs (for a recorder to attach).

usage: code_reuse.py SECONDS
"""
import gc
import json
import sys
import time

SECONDS = float(sys.argv[1])
SRC = '''
def {name}(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(500))
'''


def make(name):
    ns = {"time": time}
    exec(compile(SRC.format(name=name), "<generated>", "exec"), ns)
    return ns[name]


def main():
    alpha = make("alpha_fn")
    print("ready")
    sys.stdout.flush()
    time.sleep(0.3)  # the recorder attaches
    alpha(SECONDS)
    addr = id(alpha.__code__)
    del alpha
    gc.collect()
    keep, beta = [], None
    for _ in range(20000):
        f = make("beta_fn")
        if id(f.__code__) == addr:
            beta = f
            break
        keep.append(f)
    print(json.dumps({"reused": beta is not None, "line": 2}))
    sys.stdout.flush()
    if beta is None:
        beta = make("beta_fn")
    beta(SECONDS)


main()
