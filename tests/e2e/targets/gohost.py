# Python run by tests/e2e/targets/gohost.go (a Go program embedding CPython
# through cgo): each function is called from its own goroutine locked to an
# OS thread (PyGILState_Ensure). Lines are found by the '# @marker' comments.
import sys

THREADING = "threading" in sys.modules  # a site .pth may import it

import time  # noqa: E402


def go_spin():
    n = 0
    while True: n += 1  # @go_spin


def go_sleep():
    time.sleep(3600)  # @go_sleep


def go_tick():
    n = 0
    for i in range(3000): n += i  # @go_tick
    return n
