"""A small multi-threaded program for sonde's demo: a web-shop-like service
with a pricing loop (pure Python, holds the GIL), an image resizer (hashing,
which releases the GIL) and an idle notifier."""
import hashlib
import threading
import time


def price(item):
    total = 0
    for i in range(2000):
        total += (item * i) % 7
    return total


def price_catalogue(n):
    return sum(price(i) for i in range(n))


def pricing_loop(stop):
    while not stop.is_set():
        price_catalogue(50)


def checksum(blob):
    return hashlib.sha256(blob).hexdigest()


def resize_images(stop):
    blob = b"x" * (4 << 20)
    while not stop.is_set():
        checksum(blob)


def wait_for_mail(stop):
    while not stop.is_set():
        time.sleep(0.05)


def notifier(stop):
    wait_for_mail(stop)


def main(seconds):
    stop = threading.Event()
    workers = [
        threading.Thread(target=pricing_loop, args=(stop,), name="pricing"),
        threading.Thread(target=resize_images, args=(stop,), name="images"),
        threading.Thread(target=notifier, args=(stop,), name="notifier"),
    ]
    for w in workers:
        w.start()
    deadline = time.time() + seconds
    while time.time() < deadline:
        price_catalogue(10)
        time.sleep(0.01)
    stop.set()
    for w in workers:
        w.join()


if __name__ == "__main__":
    import sys
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)
