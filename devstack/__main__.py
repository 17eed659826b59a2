"""``python -m devstack run | demo | invoke-schedule NAME | token``: the local stack's command line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import urllib.error
import urllib.request
from types import FrameType

from devstack.template import ROOT

# The shared layer is what Lambda mounts at /opt/python; the devstack's own process (demo
# signing, reading the event log) imports it the same way the functions do.
LAYER = str(ROOT / "layers" / "loyalty")
if LAYER not in sys.path:
    sys.path.insert(0, LAYER)


def _run(args: argparse.Namespace) -> int:
    from devstack.stack import LocalStack, StackOptions

    options = StackOptions(
        host=args.host,
        port=args.port,
        retry_delay_s=args.retry_delay,
        ttl_interval_s=args.ttl_interval,
        schedules=not args.no_schedules,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack = LocalStack(options)
    try:
        stack.start()
        stop.wait()
    finally:
        print("devstack: stopping ...", flush=True)
        stack.stop()
        print("devstack: stopped", flush=True)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from devstack.demo import run_demo

    return run_demo(smoke=args.smoke, port=args.port)


def _invoke_schedule(args: argparse.Namespace) -> int:
    url = f"{args.url.rstrip('/')}/__devstack/schedules/{args.name}"
    req = urllib.request.Request(url, data=b"", method="POST")  # noqa: S310 - a local URL
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310
            print(json.dumps(json.loads(resp.read()), indent=2))
            return 0
    except urllib.error.HTTPError as err:
        print(err.read().decode(), file=sys.stderr)
        return 1
    except urllib.error.URLError:
        if not args.standalone_fallback:
            print(f"no local stack at {args.url} (start it with `make run`)", file=sys.stderr)
            return 1
    from devstack.stack import LocalStack, StackOptions

    print(f"no local stack at {args.url}: invoking on a fresh standalone stack", file=sys.stderr)
    with LocalStack(StackOptions(port=0, schedules=False)) as stack:
        outcome = stack.invoke_schedule(args.name)
        stack.wait_quiet()
        print(json.dumps({"ok": outcome.ok, "result": outcome.result, "error": outcome.error}, indent=2))
        return 0 if outcome.ok else 1


def _token(args: argparse.Namespace) -> int:
    """Sign a demo user in on the running stack's user pool and print the ID token."""
    import boto3

    from devstack.cognito import DEMO_CUSTOMER_EMAIL, DEMO_STAFF, sign_in
    from devstack.stack import FAKE_CREDENTIALS

    url = f"{args.url.rstrip('/')}/__devstack/cognito"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - a local URL
            pools = json.loads(resp.read())
    except urllib.error.URLError:
        print(f"no local stack at {args.url} (start it with `make run`)", file=sys.stderr)
        return 1
    idp = boto3.session.Session().client(
        "cognito-idp",
        region_name=pools["region"],
        endpoint_url=pools["endpoint"],
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    if args.customer:
        result = sign_in(idp, pools["customer_client_id"], args.username or DEMO_CUSTOMER_EMAIL)
    else:
        result = sign_in(idp, pools["staff_client_id"], args.username or DEMO_STAFF[args.role][0])
    print(json.dumps(result, indent=2) if args.json else result["IdToken"])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the local stack (moto + API + pollers + schedules)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=3000)
    run.add_argument(
        "--retry-delay", type=float, default=1.0, help="seconds before a failed message is retried"
    )
    run.add_argument("--ttl-interval", type=float, default=30.0, help="seconds between TTL sweeps")
    run.add_argument("--no-schedules", action="store_true", help="run schedules on demand only")
    demo = sub.add_parser("demo", help="start the stack, play the journey, print what the system knows")
    demo.add_argument("--smoke", action="store_true", help="exit non-zero unless everything was processed")
    demo.add_argument("--port", type=int, default=0, help="front door port (default: any free port)")
    inv = sub.add_parser("invoke-schedule", help="invoke a scheduled function once on the running stack")
    inv.add_argument("name", help="Function.Event, function logical id or event name")
    inv.add_argument("--url", default="http://127.0.0.1:3000")
    inv.add_argument(
        "--standalone-fallback", action="store_true", help="no stack running: start one for this"
    )
    tok = sub.add_parser("token", help="sign a demo user in on the running stack; print its ID token")
    who = tok.add_mutually_exclusive_group()
    who.add_argument("--role", default="admin", choices=["store-staff", "marketing", "privacy", "admin"])
    who.add_argument("--customer", action="store_true", help="the demo customer (Ana) instead of staff")
    tok.add_argument("--username", help="another user of the pool (password Demo-Passw0rd!)")
    tok.add_argument("--json", action="store_true", help="print the whole AuthenticationResult")
    tok.add_argument("--url", default="http://127.0.0.1:3000")
    args = parser.parse_args(argv)
    handlers = {"run": _run, "demo": _demo, "invoke-schedule": _invoke_schedule, "token": _token}
    return handlers[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
