"""Scoring on Ray: Ray Data reads the image paths, an actor pool of `ImageScorer`s scores them in batches, and
the driver writes each answer into RESULTS (`ResultsFolder`), so the results need no shared disk.

Each actor loads the face engine and the profiles once. An actor that dies is restarted and its unfinished
batches are run again (Ray Data gives actor pools `max_restarts=-1`, `max_task_retries=-1`); the driver keeps
the first answer for every image, so a retried batch is never counted twice. This package travels to the workers with the job
(`py_modules`); its dependencies must be installed on every node. The workers use the models folder the command
uses (passed as `IDENTITY_MODELS_DIR`: the package they run is a copy, so its own default folder would be empty),
so on a cluster of several machines the face and pet models must be at that path on every node.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from ..errors import IdentityError
from ..paths import models_dir
from .worker import ImageScorer

INSTALL_HINT = "pip install 'comfyui-identity-layer[scale]' (or: pip install 'ray[data]>=2.40' pyarrow)"

PACKAGE = Path(__file__).resolve().parent.parent

#: Ray names a node by the machine's network address unless told this is a single-machine runtime; a local
#: runtime (`--ray auto`) needs no network, so it stays on loopback.
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def require_ray():
    """Ray, or an error that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise IdentityError(
            f"--ray needs Ray, which is not installed here; install it with {INSTALL_HINT}, "
            "or leave out --ray to score in this process"
        ) from None
    return ray


def score_on_ray(
    address: str, paths: list[str], batch_size: int, scorer: dict, workers: int | None, log: Callable[[str], None]
) -> Iterator[pa.Table]:
    """Worker rows as they arrive. `address`: 'auto' starts a local Ray runtime; anything else joins that cluster."""
    if address == "auto":
        os.environ.update(LOOPBACK_ONLY)  # read when Ray is first imported
    ray = require_ray()
    runtime_env = {
        "py_modules": [str(PACKAGE)],
        "excludes": ["__pycache__"],
        "env_vars": {"IDENTITY_MODELS_DIR": str(models_dir().resolve())},
    }
    try:
        if address == "auto":
            ray.init(address="local", include_dashboard=False, runtime_env=runtime_env, logging_level=logging.WARNING)
        else:
            ray.init(address=address, runtime_env=runtime_env, logging_level=logging.WARNING)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise IdentityError(
            f"could not join the Ray cluster at {address!r} ({exc}); start one with "
            "'ray start --head' and pass the address it prints, or use --ray auto"
        ) from None
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the driver prints its own progress
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if workers and workers > cpus:
            raise IdentityError(
                f"--workers {workers} needs {workers} CPUs but the Ray cluster has {cpus}; "
                f"use --workers {max(1, cpus)} or add nodes"
            )
        batches = -(-len(paths) // batch_size)
        workers = min(workers or max(1, cpus), batches)  # a worker without a batch would only cost its start-up
        log(f"Ray runtime at {ray.get_runtime_context().gcs_address}: {cpus} CPUs, {workers} workers")
        dataset = ray.data.from_items([{"path": path} for path in paths], override_num_blocks=batches)
        scored = dataset.map_batches(
            ImageScorer,
            fn_constructor_kwargs=scorer,
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
        )
        try:
            yield from scored.iter_batches(batch_size=None, batch_format="pyarrow")
        except ray.exceptions.RayError as exc:
            reason = _user_error(str(exc))
            if reason is None:
                raise
            raise IdentityError(reason) from None
    finally:
        ray.shutdown()


def _user_error(text: str) -> str | None:
    """The message of an `IdentityError` a worker raised (its one sentence), from Ray's report of it."""
    for line in reversed(text.splitlines()):
        if line.startswith("identity.errors.") and ": " in line:
            return line.split(": ", 1)[1]
    return None
