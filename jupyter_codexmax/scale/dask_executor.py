"""``--executor dask``: one Dask task per notebook, on a cluster or a LocalCluster.

The run, on the machine that starts it:

1. connects to the scheduler at ``--scheduler`` (or starts a ``LocalCluster`` of ``--jobs``
   worker processes, one thread each);
2. asks every worker (``Client.run``) whether it sees every notebook at the same path and
   has an API key in its environment; any that does not stops the run (status 2) in one
   line naming the workers and what they lack, before anything is touched;
3. submits :func:`.task.run_notebook` for each notebook (the task carries the path, the
   task text and the non-secret settings; never the key) and gathers the report entries
   as they finish (``as_completed``), showing progress from the workers' events;
4. closes what it opened, also when stopped (Ctrl-C, SIGTERM).

A worker lost mid-task (killed, out of memory, preempted): Dask runs the task again on
another worker (up to the scheduler's ``distributed.scheduler.allowed-failures``), and the
entry says where it started before (``lost_workers``); when Dask gives up, the notebook is
reported ``failed``. Either way it never vanishes, and its file is as it was or fully
written (every write is a temporary file renamed over it).
"""

from __future__ import annotations

import contextlib
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config import CodexMax
from ..errors import ConfigError
from ..secrets import redact

__all__ = ["ClusterError", "run_on_dask"]


class ClusterError(ConfigError):
    """The cluster cannot run this (no Dask, no connection, workers that cannot see the
    notebooks or have no key): exit 2, nothing touched."""


class _Stopped(Exception):
    """SIGTERM: stop the tasks, close the cluster, exit 143."""


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ClusterError(
            "--executor dask needs Dask on this machine and the workers: "
            "pip install 'jupyter-codexmax[dask]'"
        ) from exc
    return distributed


@contextlib.contextmanager
def open_client(scheduler: str, workers: int, settings: CodexMax) -> Iterator[Any]:
    """A client of the cluster at ``scheduler`` (or of a new LocalCluster of ``workers``
    processes, given this run's API key through their environment: the nanny sets it in
    each worker process, never through the scheduler)."""
    distributed = _import_distributed()
    cluster = None
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"--scheduler {scheduler}: cannot connect: {' '.join(str(exc).split())}"
            ) from exc
    else:
        key = settings.resolved_api_key()
        env = {settings.api_key_env: key.reveal()} if key else {}
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env=env,
        )
        client = distributed.Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


def check_workers(client: Any, paths: list[str], values: dict[str, Any]) -> str | None:
    """Why the cluster's workers cannot run these notebooks (one line), or None."""
    from .task import check_worker

    try:
        client.wait_for_workers(1, timeout=30)
    except TimeoutError:
        return "the cluster has no workers (none joined within 30 s)"
    try:
        answers = client.run(check_worker, paths, values)
    except Exception as exc:
        return (
            "the workers cannot run jupyter-codexmax (is it installed where they run?): "
            f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        )
    problems: list[str] = []
    for worker, answer in sorted(answers.items()):
        missing = answer["missing"]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            problems.append(f"worker {worker} cannot see {missing[0]}{more}")
        if answer["key_problem"]:
            problems.append(f"worker {worker}: {answer['key_problem']}")
    if not problems:
        return None
    return (
        "; ".join(problems)
        + " (the workers need the notebooks at the same paths, on a shared file system, and "
        "the API key in their own environment: see docs/scale.md)"
    )


def _failure(exc: BaseException, allowed: Any) -> str:
    distributed = _import_distributed()
    if isinstance(exc, distributed.KilledWorker):
        return (
            "its worker was lost each time it ran (Dask gave up after "
            f"distributed.scheduler.allowed-failures = {allowed}); the notebook is as it "
            "was or fully written; --resume runs it again"
        )
    return f"the task failed on the cluster: {type(exc).__name__}: {' '.join(str(exc).split())}"


def run_on_dask(
    settings: CodexMax,
    jobs: list[Any],
    options: Any,
    *,
    scheduler: str,
    workers: int,
    new_session: bool = False,
) -> tuple[int, list[Any]]:
    """Run ``jobs`` (prepared notebooks) as one Dask task each; (status, outcomes)."""
    from ..cli.run import NotebookOutcome, _short_names
    from .display import ClusterProgress
    from .portable import portable_settings
    from .task import TaskSpec, limit_name, run_notebook, topic

    distributed = _import_distributed()
    import datetime

    started = datetime.datetime.now(datetime.timezone.utc)
    run_id = uuid.uuid4().hex
    values = portable_settings(settings)
    paths = [str(j.doc.path) for j in jobs]
    names = _short_names([j.doc.path for j in jobs])
    outcomes: dict[str, NotebookOutcome] = {}

    def stop(signum: int, frame: Any) -> None:
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with open_client(scheduler, workers, settings) as client:
            problem = check_workers(client, paths, values)
            if problem:
                raise ClusterError(problem)
            allowed = client.run_on_scheduler(_allowed_failures)
            progress = ClusterProgress(len(jobs), quiet=options.quiet)
            client.subscribe_topic(topic(run_id), progress.on_event)
            semaphore = None
            if options.max_requests:
                semaphore = distributed.Semaphore(
                    max_leases=options.max_requests, name=limit_name(run_id)
                )
                distributed.Variable(f"{limit_name(run_id)}-backoff", client=client).set(0.0)
            futures = {}
            for job in jobs:
                name = names[job.doc.path]
                spec = TaskSpec(
                    task=options.task,
                    settings=values,
                    run_id=run_id,
                    name=name,
                    new_session=new_session,
                    timeout=options.timeout,
                    max_requests=options.max_requests,
                )
                key = f"codexmax-{Path(name).stem[:40]}-{uuid.uuid4().hex[:12]}"
                future = client.submit(run_notebook, str(job.doc.path), spec, key=key, pure=False)
                futures[future] = (str(job.doc.path), name)
            try:
                for future in distributed.as_completed(list(futures), loop=client.loop):
                    path, name = futures[future]
                    lost = False
                    try:
                        entry = future.result()
                    except Exception as exc:
                        lost = isinstance(exc, distributed.KilledWorker)
                        entry = {"path": path, "status": "failed", "error": _failure(exc, allowed)}
                    entry = _with_attempts(entry, progress.attempts.get(name, []), lost)
                    progress.finished(name, entry)
                    outcomes[path] = NotebookOutcome(
                        path,
                        str(entry.get("status", "failed")),
                        error=entry.get("error"),
                        seconds=float(entry.get("wall_time") or 0.0),
                        data=entry,
                    )
            finally:
                progress.close()
                client.cancel(list(futures))
                if semaphore is not None:
                    with contextlib.suppress(Exception):
                        semaphore.close()
                with contextlib.suppress(Exception):
                    client.unsubscribe_topic(topic(run_id))
    except _Stopped:
        from ..cli.run import Terminated

        raise Terminated from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    ordered = [outcomes[p] for p in paths]
    status = 0 if all(o.status == "done" for o in ordered) else 1
    from ..cli.reports import write_reports

    return write_reports(options, settings, started, ordered, status), ordered


def _allowed_failures() -> Any:
    import dask

    return dask.config.get("distributed.scheduler.allowed-failures")


def _with_attempts(entry: dict[str, Any], started_on: list[str], lost: bool) -> dict[str, Any]:
    """The entry, with the workers lost while running it (``lost``: Dask gave up, so the
    last one was lost too)."""
    if started_on:
        entry = {"worker": started_on[-1], **entry}
    gone = started_on if lost else started_on[:-1]
    if gone:
        entry = {**entry, "attempts": len(started_on), "lost_workers": gone}
    return {**entry, "error": redact(entry["error"])} if entry.get("error") else entry
