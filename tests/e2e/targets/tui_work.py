"""Target for the TUI tests: distinctive function names on three threads.

MainThread spins in crunch_alpha_numbers (holds the GIL most of the time),
"beta-sleeper" sleeps in doze_beta_nap, "gamma-spinner" spins in
spin_gamma_loop. Runs for argv[1] seconds (default 600), prints 'ready'.
"""
import sys
import threading
import time


def doze_beta_nap():
    while True:
        time.sleep(0.05)


def spin_gamma_inner(n):
    s = 0
    for i in range(n):
        s += i * i
    return s


def spin_gamma_loop():
    while True:
        spin_gamma_inner(2000)


def crunch_alpha_leaf(n):
    s = 0
    for i in range(n):
        s += i % 7
    return s


def crunch_alpha_numbers(deadline):
    while time.time() < deadline:
        crunch_alpha_leaf(5000)


def main():
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 600
    for fn, name in ((doze_beta_nap, "beta-sleeper"), (spin_gamma_loop, "gamma-spinner")):
        t = threading.Thread(target=fn, name=name)
        t.daemon = True  # (2.7 has no daemon= argument)
        t.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    crunch_alpha_numbers(time.time() + secs)


if __name__ == "__main__":
    main()
