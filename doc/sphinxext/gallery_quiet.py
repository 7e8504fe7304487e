"""No training progress bars on the gallery's pages.

The examples pass ``verbose=True`` so that a person running one sees the loss and the
time left on the terminal. Sphinx-Gallery captures what an example writes to stderr as
well, and a progress bar would fill the page with hundreds of lines, so the documentation
build switches the training loop's bars off before each example runs (``reset_modules``
in ``conf.py``). The examples' code and results are unchanged.
"""


def quiet_progress(gallery_conf, fname):
    from skabi.training import loop

    original = getattr(loop.tqdm, "__wrapped__", loop.tqdm)

    def silent_bar(*args, **kwargs):
        kwargs["disable"] = True
        return original(*args, **kwargs)

    silent_bar.__wrapped__ = original
    loop.tqdm = silent_bar
