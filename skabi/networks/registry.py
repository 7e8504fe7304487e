"""Which network holder classes a saved file may name: skabi's own and those registered.

A saved estimator stores each network as the name of its holder class and the holder's
parameters, and loading builds the class of that name again: loading never unpickles
code. A network written outside skabi (a subclass of :class:`InferenceNetwork` or
:class:`SummaryNetwork`) joins that list with :func:`register_network`, in every
process that saves or loads it.
"""

__all__ = ["register_network", "network_name", "network_class", "registered_networks",
           "is_holder"]

_REGISTRY = {}


def _where(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def is_holder(obj):
    """Whether ``obj`` (a class or an instance) is a network holder: it has ``build`` and
    ``get_params``, what a saved file needs to rebuild it."""
    return callable(getattr(obj, "build", None)) and callable(getattr(obj, "get_params", None))


def register_network(cls=None, *, name=None):
    """Class decorator: let saved files name a network holder written outside skabi.

    Parameters
    ----------
    cls : type
        A network holder: a class with ``get_params`` and ``build`` (subclass
        :class:`~skabi.networks.InferenceNetwork` or
        :class:`~skabi.networks.SummaryNetwork`) whose parameters are plain values.
    name : str, optional
        The name a saved file records; default the class's ``__name__``. It must not be
        taken by another class (skabi's own networks hold their class names).

    Returns
    -------
    type
        ``cls``, unchanged.

    Examples
    --------
    >>> from skabi.networks import DeepSet, register_network
    >>> @register_network
    ... class WideDeepSet(DeepSet):
    ...     pass
    >>> from skabi.networks.registry import network_class
    >>> network_class("WideDeepSet") is WideDeepSet
    True
    """
    def register(klass):
        key = klass.__name__ if name is None else name
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"register_network: name must be a Python identifier; got {key!r}.")
        if not (isinstance(klass, type) and is_holder(klass)):
            raise TypeError(
                f"register_network takes a network holder class (with build() and "
                f"get_params(): subclass skabi.networks.InferenceNetwork or SummaryNetwork); "
                f"got {klass!r}.")
        known = _REGISTRY.get(key)
        if known is not None and known is not klass and _where(known) != _where(klass):
            raise ValueError(
                f"The network name {key!r} is taken by {_where(known)}; register "
                f"{_where(klass)} under another name: @register_network(name='...').")
        _REGISTRY[key] = klass   # a class defined again (a notebook cell run twice) replaces
        return klass

    return register if cls is None else register(cls)


def network_name(cls):
    """The name a saved file records for the holder class ``cls``; a ``ValueError`` that
    names the fix for a class not registered."""
    for key, klass in _REGISTRY.items():
        if klass is cls:
            return key
    raise ValueError(
        f"The network {_where(cls)} is not registered, so a saved file could not name it "
        "(loading never unpickles code). Decorate its class with "
        "@skabi.networks.register_network (and import it before loading the file).")


def network_class(name):
    """The holder class registered as ``name``, or None."""
    return _REGISTRY.get(name)


def registered_networks():
    """The names a saved file may hold, sorted."""
    return sorted(_REGISTRY)
