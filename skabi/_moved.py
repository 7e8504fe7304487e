"""Names that moved to another module, still importable from the old one for one release,
with a ``DeprecationWarning`` that names the new place (PEP 562 module ``__getattr__``)."""

import importlib
import warnings


def moved_attribute(module, name, moved):
    """``name`` of the old ``module``, looked up in its new module ``moved[name]`` with a
    ``DeprecationWarning``; an ``AttributeError`` for any other name.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     from skabi.estimator import AmortizedPosterior
    >>> caught[0].category.__name__
    'DeprecationWarning'
    """
    if name not in moved:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    target = moved[name]
    warnings.warn(f"{module}.{name} moved to {target}.{name} (issue 30); import it from "
                  f"{'skabi' if name.startswith('Amortized') else target}. The old path "
                  "will be removed after one release.", DeprecationWarning, stacklevel=3)
    return getattr(importlib.import_module(target), name)
