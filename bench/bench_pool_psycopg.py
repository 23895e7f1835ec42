#!/usr/bin/python3
"""The Python peer for bench_pool.c: psycopg_pool getconn/putconn pairs per
second on a pool of the same size, with the same thread count, for the same
time. Prints one line: `ops_per_s=<float>` (bench_pool.c parses it).

usage: bench_pool_psycopg.py DSN THREADS POOL_SIZE SECONDS
"""
import sys
import threading
import time

from psycopg_pool import ConnectionPool


def main() -> None:
    dsn, threads, size, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    pool = ConnectionPool(dsn, min_size=size, max_size=size, timeout=30, open=True)
    pool.wait(timeout=30)
    # Warm up: every connection handed out once.
    conns = [pool.getconn() for _ in range(size)]
    for c in conns:
        pool.putconn(c)

    stop = threading.Event()
    counts = [0] * threads

    def work(i: int) -> None:
        n = 0
        while not stop.is_set():
            c = pool.getconn()
            pool.putconn(c)
            n += 1
        counts[i] = n

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - t0
    pool.close()
    print(f"ops_per_s={sum(counts) / elapsed:.1f}")


if __name__ == "__main__":
    main()
