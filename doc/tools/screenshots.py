"""Screenshots of built documentation pages, as a reader with a 1400 px window sees them.

Usage::

    python doc/tools/screenshots.py doc/_build/html OUT_DIR [PAGE ...]

PAGE is a path inside the built site (default: the landing page, the quickstart, two
moons and the migration tables). Each page is rendered by headless Chromium (Debian's
``chromium`` package; any ``chromium``/``google-chrome`` on PATH will do) into
``OUT_DIR/<page>.png``, 1400 px wide and tall enough for the whole page, so that clipped
tables, overflowing code and unconverged figures are visible. Nothing here runs in CI:
the pictures are for a person to look at.
"""

import pathlib
import shutil
import subprocess
import sys

PAGES = ["index.html", "auto_examples/quickstart.html", "auto_examples/two_moons.html",
         "migration.html"]
WIDTH = 1400
HEIGHT = 16000   # taller than any page; trim() cuts what is left blank


def browser():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("no chromium or google-chrome on PATH (Debian: apt-get install chromium)")


def trim(path):
    """Cut the blank stretch that the tall window leaves between the page's end and its
    footer (pinned to the window's bottom): the longest run of identical rows."""
    import numpy as np
    from PIL import Image   # Pillow comes with matplotlib

    pixels = np.asarray(Image.open(path).convert("RGB"))
    same = np.concatenate([[False], (pixels[1:] == pixels[:-1]).all(axis=(1, 2))])
    edges = np.flatnonzero(np.diff(np.concatenate([[0], same.astype(int), [0]])))
    starts, ends = edges[::2], edges[1::2]
    if starts.size:
        longest = np.argmax(ends - starts)
        start, end = starts[longest] + 40, ends[longest]
        if end > start:
            Image.fromarray(np.concatenate([pixels[:start], pixels[end:]])).save(path)


def shoot(exe, site, page, out):
    url = (site / page).resolve().as_uri()
    target = out / (page.replace("/", "_").removesuffix(".html") + ".png")
    subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={target}", url],
                   check=True, capture_output=True, timeout=180)
    trim(target)
    return target


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    site, out = pathlib.Path(argv[0]), pathlib.Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    exe = browser()
    for page in argv[2:] or PAGES:
        if not (site / page).is_file():
            sys.exit(f"{site / page} is not a built page")
        print(shoot(exe, site, page, out))


if __name__ == "__main__":
    main(sys.argv[1:])
