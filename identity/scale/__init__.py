"""Identity at dataset scale: `python -m identity batch-score`, in this process or on a Ray cluster.

Needs pyarrow (results are Parquet) and, for `--ray`, Ray Data: `pip install 'comfyui-identity-layer[scale]'`.
"""

from .runner import BatchOptions, batch_score, describe, expand_sources

__all__ = ["BatchOptions", "batch_score", "describe", "expand_sources"]
