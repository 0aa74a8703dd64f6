"""Benchmark ceiling: nginx answering every POST /api with a fixed JSON body.

Usage: python3 nginx_ceiling.py PORT [WORKERS]. No JSON-RPC at all: it shows what HTTP alone
costs on the same core, so every server's figure can be read as a fraction of it. Debian's
nginx (``bench/setup.sh`` installs it), one worker process per server core (``WORKERS``, 1 by
default), access log off (the Python peers log nothing per request either, except ours and
gemstone). The configuration and nginx's own files go to a fresh directory under
bench/results/logs/ (gitignored, emptied by each run); nginx then replaces this process, so the
harness's PID, signals and RSS reading are nginx's own (SIGTERM is nginx's fast shutdown).
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

BODY = '{"jsonrpc":"2.0","result":3,"id":1}'

CONFIG = """\
worker_processes {workers};
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location = /api {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
}}
"""


def main() -> None:
    """Write the configuration and exec nginx in the foreground."""
    port = int(sys.argv[1])
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    results = Path(__file__).resolve().parent.parent / "results" / "logs"
    results.mkdir(parents=True, exist_ok=True)
    root = tempfile.mkdtemp(prefix=f"nginx-{port}-", dir=results)
    conf = Path(root) / "nginx.conf"
    conf.write_text(CONFIG.format(workers=workers, root=root, port=port, body=BODY))
    os.execv(nginx, [nginx, "-p", root, "-c", str(conf)])


if __name__ == "__main__":
    main()
