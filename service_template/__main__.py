"""``python -m service_template``: the same command line as ``service-template``."""

from service_template.cli import main

raise SystemExit(main())
