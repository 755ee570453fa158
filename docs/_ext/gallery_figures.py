"""A sphinx-gallery image scraper for figures outside pyplot.

The package's plotting functions return ``matplotlib.figure.Figure`` objects
that pyplot does not track (no figure left open in a user's session), so
sphinx-gallery's own matplotlib scraper cannot see them. This one saves each
new Figure an example holds in a variable, after the code block that made it.
"""

from __future__ import annotations

import weakref

from matplotlib.figure import Figure
from sphinx_gallery.scrapers import figure_rst

_SHOWN: weakref.WeakSet = weakref.WeakSet()


def scrape_figures(block, block_vars, gallery_conf):
    """Save the Figures of the example's variables not yet shown; their rst."""
    import matplotlib.pyplot as plt

    # pyplot's own figures are the matplotlib scraper's (it runs next)
    in_pyplot = {id(plt.figure(n)) for n in plt.get_fignums()}
    paths = []
    for value in list(block_vars["example_globals"].values()):
        if (
            isinstance(value, Figure)
            and id(value) not in in_pyplot
            and value not in _SHOWN
        ):
            _SHOWN.add(value)
            path = next(block_vars["image_path_iterator"])
            value.savefig(path, dpi=100)
            paths.append(path)
    return figure_rst(paths, gallery_conf["src_dir"])
