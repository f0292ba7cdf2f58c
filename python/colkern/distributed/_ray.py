"""Ray plumbing shared by the distributed indexer and searcher: importing Ray with a clear error,
starting or joining a cluster, resource choice for actors, and waits that raise instead of hanging.

Why the address is probed first: ray.init(address="host:port") on an address where nothing
listens retries the GCS connection for about a minute before it fails; a TCP connect with a
short timeout names the bad address in a second.
"""
from __future__ import annotations

import os
import queue
import socket
import threading
from typing import Any, Iterable, Iterator, Optional

# A small object store on a local start: the pipeline streams (a few batches of page images and
# embeddings in flight), and these machines have little memory to spare.
LOCAL_OBJECT_STORE = 384 * 2**20
# Fractional CPUs per actor on a CPU-only cluster: actors asking for whole CPUs on a 2-core
# machine leave no CPU for Ray Data's read / render tasks, and the pipeline stalls (a known
# Ray Data behaviour with actor pools that reserve every CPU).
ACTOR_CPUS = 0.5


def import_ray():
    try:
        import ray
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("colkern.distributed needs Ray: pip install 'colkern[distributed]' "
                          f"(ray[data]) ({e})") from None
    return ray


def _probe(address: str, timeout_s: float) -> None:
    """ConnectionError naming `address` when nothing accepts a TCP connection there."""
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"address must be 'auto', 'host:port' or 'ray://host:port', got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise ConnectionError(f"cannot reach a Ray cluster at address {address!r}: {e}") from None


def init_ray(address: Optional[str] = None, *, num_cpus: Optional[int] = None,
             object_store_memory: int = LOCAL_OBJECT_STORE, connect_timeout_s: float = 5.0) -> bool:
    """Makes sure Ray is initialised. -> True when this call started it (the caller shuts it
    down), False when Ray was already running in this process (then it is used as it is) or
    `address` names a cluster.

    address: None starts a local Ray (num_cpus default: the machine's CPUs, a small object
    store, no dashboard); "auto" joins the cluster this machine belongs to; "host:port" or
    "ray://host:port" joins that cluster (ConnectionError naming it when unreachable)."""
    ray = import_ray()
    if address is not None:
        if not isinstance(address, str) or not address:
            raise ValueError(f"address must be a non-empty str or None, got {address!r}")
        if address != "auto":  # probed even when Ray is running here: a wrong address is an error
            _probe(address, connect_timeout_s)
    if ray.is_initialized():
        return False
    if address is not None:
        try:
            ray.init(address=address, log_to_driver=False)
        except ConnectionError as e:
            raise ConnectionError(f"cannot connect to the Ray cluster at address {address!r}: {e}") from None
        except Exception as e:  # Ray raises several types for a bad cluster (RuntimeError, ValueError)
            raise ConnectionError(f"cannot connect to the Ray cluster at address {address!r}: "
                                  f"{type(e).__name__}: {e}") from None
        return False
    ray.init(num_cpus=num_cpus or os.cpu_count() or 1, object_store_memory=object_store_memory,
             include_dashboard=False, log_to_driver=False)
    return True


def actor_resources(num_cpus: Optional[float] = None) -> dict:
    """{"num_gpus": 1} when the cluster has GPUs, else {"num_cpus": fractional}."""
    ray = import_ray()
    if ray.cluster_resources().get("GPU", 0) > 0:
        return {"num_gpus": 1}
    return {"num_cpus": ACTOR_CPUS if num_cpus is None else float(num_cpus)}


def has_gpus() -> bool:
    return import_ray().cluster_resources().get("GPU", 0) > 0


def check_timeout(value, name: str, op: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{op}: {name} must be a positive number of seconds or None, got {value!r}")
    return float(value)


_DONE = object()


def iterate_with_stall_timeout(items: Iterable[Any], stall_timeout_s: Optional[float], what: str,
                               maxsize: int = 2) -> Iterator[Any]:
    """Yields from `items` (consumed in a helper thread); TimeoutError when no item arrives for
    stall_timeout_s seconds, so a stuck pipeline raises instead of running forever. Errors of
    the producer are re-raised here."""
    if stall_timeout_s is None:
        yield from items
        return
    q: "queue.Queue" = queue.Queue(maxsize=maxsize)
    stop = threading.Event()

    def produce():
        try:
            for x in items:
                while not stop.is_set():
                    try:
                        q.put((True, x), timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((True, _DONE))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer thread
            q.put((False, e))

    t = threading.Thread(target=produce, name="colkern-ray-consumer", daemon=True)
    t.start()
    try:
        while True:
            try:
                ok, x = q.get(timeout=stall_timeout_s)
            except queue.Empty:
                raise TimeoutError(f"{what}: no progress for {stall_timeout_s:g} s (stall_timeout_s); "
                                   f"the cluster may lack the resources the pipeline asks for") from None
            if not ok:
                raise x
            if x is _DONE:
                return
            yield x
    finally:
        stop.set()
