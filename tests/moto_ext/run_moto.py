"""Start a moto server with the moto_ext patches and control endpoints.

    python tests/moto_ext/run_moto.py [--host 127.0.0.1] [--port 0]

With --port 0 the OS picks a free port; the line ``BPL_MOTO_LISTENING <port>`` on
stdout (and --port-file, written atomically) tells the caller which one, once the
socket is listening.
"""

from __future__ import annotations

import argparse
import os
import sys

# Run as a script: make the package importable as moto_ext.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from werkzeug.serving import make_server  # noqa: E402

from moto_ext import patches  # noqa: E402
from moto_ext.control import ControlApp  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", help="also write the bound port to this file")
    args = parser.parse_args(argv)

    patches.apply()
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    app = ControlApp(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    port = server.server_port
    # moto builds some URLs (e.g. presigned ones) from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    if args.port_file:
        tmp = f"{args.port_file}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"BPL_MOTO_LISTENING {port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
