"""Start the fake GitHub API server.

    python tests/github_fake/run_github.py [--host 127.0.0.1] [--port 0] [--port-file FILE]
        [--app-id ID --app-public-key PEM|FILE] [--client-id ID] [--app-slug SLUG]
        [--installation ID=owner/repo[,owner/repo...]]... [--static-token TOKEN[=owner/repo,...]]...
        [--token-ttl SECONDS] [--rate-limit N] [--status-limit N] [--relative-links] [--verbose]

With --port 0 the OS picks a free port; the line ``BPL_GITHUB_LISTENING <port>`` on
stdout (and --port-file, written atomically) tells the caller which one, once the
socket is listening. Token and JWT values are never printed.
"""

from __future__ import annotations

import argparse
import os
import sys

# Run as a script: make the package importable as github_fake.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402

from github_fake import jwt_rs256  # noqa: E402
from github_fake.server import (  # noqa: E402
    Config,
    GitHubFake,
    parse_installation_arg,
    parse_static_token_arg,
)


class QuietHandler(WSGIRequestHandler):
    """No access log (paths never hold secrets, but the test output stays clean)."""

    def log_request(self, code: object = "-", size: object = "-") -> None:
        if os.environ.get("BPL_GITHUB_VERBOSE"):
            super().log_request(code, size)


def build_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Config:
    if (args.app_id is None) != (args.app_public_key is None):
        parser.error("--app-id and --app-public-key go together")
    try:
        public_key = jwt_rs256.load_public_key(args.app_public_key) if args.app_public_key else None
        installations = [parse_installation_arg(i) for i in args.installation]
        static_tokens = [parse_static_token_arg(t) for t in args.static_token]
    except (ValueError, OSError) as err:
        parser.error(str(err))
    ids = [ident for ident, _ in installations]
    if len(set(ids)) != len(ids):
        parser.error("--installation ids must be unique")
    if args.token_ttl <= 0 or args.rate_limit <= 0 or args.status_limit <= 0:
        parser.error("--token-ttl, --rate-limit and --status-limit must be positive")
    return Config(
        app_id=args.app_id,
        public_key=public_key,
        client_id=args.client_id,
        app_slug=args.app_slug,
        installations=installations,
        static_tokens=static_tokens,
        token_ttl=args.token_ttl,
        rate_limit=args.rate_limit,
        status_limit=args.status_limit,
        relative_links=args.relative_links,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", help="also write the bound port to this file")
    parser.add_argument("--app-id", type=int, help="the GitHub App's id (JWT iss)")
    parser.add_argument(
        "--app-public-key",
        help="the App's RSA public key: PEM text or a PEM file (a private key PEM works too)",
    )
    parser.add_argument("--client-id", help="also accept this client id as JWT iss")
    parser.add_argument("--app-slug", default="branchpipeline-fake")
    parser.add_argument(
        "--installation",
        action="append",
        default=[],
        metavar="ID=owner/repo[,owner/repo...]",
        help="an installation of the App (repeatable)",
    )
    parser.add_argument(
        "--static-token",
        action="append",
        default=[],
        metavar="TOKEN[=owner/repo,...]",
        help="a personal / fine-grained token: every repository, or the listed ones (repeatable)",
    )
    parser.add_argument(
        "--token-ttl", type=float, default=3600.0, help="installation token lifetime, s"
    )
    parser.add_argument(
        "--rate-limit", type=int, default=5000, help="primary limit per hour per credential"
    )
    parser.add_argument(
        "--status-limit", type=int, default=1000, help="statuses per sha and context"
    )
    parser.add_argument(
        "--relative-links",
        action="store_true",
        help="Link headers with paths instead of absolute URLs (see README.md)",
    )
    parser.add_argument("--verbose", action="store_true", help="log each request line to stderr")
    args = parser.parse_args(argv)
    if args.verbose:
        os.environ["BPL_GITHUB_VERBOSE"] = "1"

    try:
        app = GitHubFake(build_config(args, parser))
    except ValueError as err:  # e.g. one repository in two installations
        parser.error(str(err))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=QuietHandler)
    port = server.server_port
    if args.port_file:
        tmp = f"{args.port_file}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"BPL_GITHUB_LISTENING {port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
