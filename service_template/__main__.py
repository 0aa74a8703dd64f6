"""``python -m service_template``: the same command line as ``service-template``.

``python -m`` puts the working directory first on ``sys.path``, where a planted ``yaml.py`` or
``tornado.py`` would shadow the runtime's dependencies. It is taken off here, before the CLI
imports them; ``serve package.module:Class`` still finds modules there (the loader appends the
working directory). Only what the package itself imported to get here (orjson) came before.
"""

import os
import sys

if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from service_template.cli import main  # after the path fix above, on purpose

raise SystemExit(main())
