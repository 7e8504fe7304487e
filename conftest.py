"""pytest set-up for the doctests collected from ``skabi/`` (``tests/`` has its own).

Plots render off-screen (Agg) whatever the machine's display; the storage examples that
write Zarr banks are skipped where the optional ``zarr`` package (``[scale]`` extra) is
missing, as the storage tests are.
"""

import importlib.util

import matplotlib

matplotlib.use("Agg")

collect_ignore = []
if importlib.util.find_spec("zarr") is None:
    collect_ignore += ["skabi/storage.py", "skabi/_storage_read.py"]
