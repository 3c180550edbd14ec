"""`flask worker` as the soak runs it: the same command (Flask's CLI, the app of wsgi.py), with
the dispatcher's INFO lines in the worker's log, so the soak can count what SIGTERMed workers
handed back ("handed N in-flight deliveries back ..."). Nothing else changes.

    python -m tests.soak.worker     # = flask worker, with FLASK_APP set by the caller
"""

from __future__ import annotations

import logging
import sys

from flask.cli import main

if __name__ == "__main__":
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    logger = logging.getLogger("dispatcher")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    sys.argv = ["flask", "worker"]
    main()
