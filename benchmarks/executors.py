"""Executors run lists of tasks and yield ``(task, result)`` as each one finishes.

A task is any picklable object with ``key() -> str`` (its stable identity), ``label() ->
str`` (for progress and errors) and ``run() -> result`` (pure apart from writing into its
own cache location): dataset generation (`GenerateTask`), training (`TrainTask`) and
evaluation (`EvalTask`, `ExternalTask`) all qualify. The three executors run the *same*
task objects, so they give the same results:

- `run_sequential`: one after another in this process (tests, debugging);
- `run_local` (default): a process pool on this machine (``spawn``: no state inherited
  from the parent, so a worker computes exactly what this process would);
- `RayExecutor` (and `run_ray` for one list): remote tasks on a Ray cluster (optional
  extra ``physground[ray]``). A local Ray instance is started when no cluster address is
  given. On a multi-node cluster the
  runs root (datasets, checkpoints, samples) must be on a filesystem every node mounts.

Results are yielded in completion order; the runner stores each one under its key as it
arrives, so an interrupted run loses at most the tasks that were in flight.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from physground.errors import PhysgroundError, ValidationError


class Task(Protocol):
    """What executors need from a unit of work."""

    def key(self) -> str: ...

    def label(self) -> str: ...

    def run(self) -> Any: ...


Executor = Callable[[Sequence[Task]], Iterable[tuple[Any, Any]]]

EXECUTORS = ("local", "sequential", "ray")


def run_sequential(tasks: Sequence[Task]) -> Iterator[tuple[Task, Any]]:
    """Run tasks one after another in this process."""
    for task in tasks:
        yield task, task.run()


def _die_with_parent(parent: int) -> None:
    """Make this worker exit when process ``parent`` does, however it ends (``kill -9``
    included): ``PR_SET_PDEATHSIG`` on Linux, plus a watchdog thread that polls the parent
    pid every second (other platforms, and a parent that died before the prctl)."""
    import signal
    import threading
    import time

    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="physground-parent-watch", daemon=True).start()


def _init_worker(threads: int, parent: int) -> None:
    """Tie the worker's life to the parent's, leave Ctrl-C to the parent (which stops the
    pool), and limit intra-op threads so that workers do not oversubscribe cores."""
    import signal

    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return
    torch.set_num_threads(threads)


def _run_task(task: Task) -> Any:
    return task.run()


def default_workers() -> int:
    """Worker processes for the local executor: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_local(
    tasks: Sequence[Task], workers: int | None = None
) -> Iterator[tuple[Task, Any]]:
    """Run tasks in a pool of ``workers`` processes (default: one per available core).

    A single task, or a single worker, runs in this process (no pool start-up cost). Each
    worker gets ``cores // workers`` torch threads. A task that raises stops the run: the
    pool is shut down, pending tasks are cancelled, and the error propagates.
    """
    tasks = list(tasks)
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValidationError(f"workers = {workers}, expected >= 1")
    workers = min(workers, len(tasks))
    if workers <= 1:
        yield from run_sequential(tasks)
        return
    threads = max(1, default_workers() // workers)
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                               initializer=_init_worker, initargs=(threads, os.getpid()))
    finished = False
    try:
        futures: dict[Future, int] = {pool.submit(_run_task, t): i for i, t in enumerate(tasks)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=futures.__getitem__):
                yield tasks[futures[future]], future.result()
        finished = True
    finally:
        if not finished:  # an error, Ctrl-C or SIGTERM: stop the workers now
            stop_workers(pool)
        pool.shutdown(wait=True, cancel_futures=True)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's worker processes (their unfinished tasks are redone on a rerun)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(OSError, ValueError):
            process.kill()
    for process in processes:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            process.join(timeout=5)


class RayExecutor:
    """Runs tasks as Ray remote functions (one CPU each), yielding them as they finish.

    ``address`` is a cluster address (``ray://host:10001`` or ``auto``); without it a local
    Ray instance with ``num_cpus`` CPUs is started on first use. One instance serves every
    stage of a run; `close` stops it (only if this executor started it).
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self._started = False

    def _ray(self) -> Any:
        try:
            import ray
        except ImportError:
            raise PhysgroundError(
                "the Ray executor needs Ray: pip install 'physground[ray]'"
            ) from None
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            if self.address is not None:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(num_cpus=self.num_cpus or default_workers(), **kwargs)
            self._started = True
        return ray

    def __call__(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Any]]:
        tasks = list(tasks)
        if not tasks:
            return
        ray = self._ray()
        remote = ray.remote(num_cpus=1, max_retries=0)(_run_task)
        refs = {remote.remote(t): t for t in tasks}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    yield refs[ref], ray.get(ref)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        """Stop the local Ray instance this executor started (a cluster is left alone)."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


def run_ray(
    tasks: Sequence[Task], address: str | None = None, num_cpus: int | None = None
) -> Iterator[tuple[Task, Any]]:
    """Run ``tasks`` on Ray once (starting and stopping a local instance if needed)."""
    executor = RayExecutor(address, num_cpus)
    try:
        yield from executor(tasks)
    finally:
        executor.close()


def get_executor(name: str, *, workers: int | None = None,
                 address: str | None = None) -> Executor:
    """The executor called ``name`` (``local``, ``sequential`` or ``ray``)."""
    if name == "local":
        return lambda tasks: run_local(tasks, workers=workers)
    if name == "sequential":
        return run_sequential
    if name == "ray":
        return RayExecutor(address=address, num_cpus=workers)
    from physground.errors import did_you_mean

    raise ValidationError(
        f"executor '{name}' is not one of {EXECUTORS}{did_you_mean(name, EXECUTORS)}"
    )
