"""The order of the examples in the gallery: from a first posterior to model checks."""

import os

ORDER = ["quickstart.py", "gaussian_means.py", "two_moons.py", "sir.py", "grid_search.py",
         "predictive_checks.py", "likelihood.py", "model_comparison.py", "point_estimation.py",
         "multilevel.py"]


class ExampleOrder:
    """Sort key for ``within_subsection_order``: ``ORDER`` first, then by file name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = os.path.basename(filename)
        return (ORDER.index(name), name) if name in ORDER else (len(ORDER), name)
