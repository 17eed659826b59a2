"""The local stack: emulator, provisioning, workers, pollers, schedules and front door together."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from devstack import sigv4
from devstack.cognito import (
    DEMO_CUSTOMER_EMAIL,
    DEMO_PASSWORD,
    DEMO_STAFF,
    JwtAuthorizer,
    create_demo_users,
    jwt_authorizers,
    sign_in,
)
from devstack.frontdoor import FrontDoor
from devstack.plan import Plan, build_plan
from devstack.pollers import Loop, Scheduler, SqsPoller, StreamPoller, TtlMarks, TtlSweeper
from devstack.provision import local_parameters, local_secrets, provision
from devstack.runtime import Console, Invoker, Outcome, Worker
from devstack.template import ROOT, Resolver, load, resources_of

_dumps = json.dumps

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass
class StackOptions:
    host: str = "127.0.0.1"
    port: int = 3000  # 0: any free port
    region: str = "eu-west-1"
    retry_delay_s: float = 1.0
    ttl_interval_s: float = 30.0
    schedules: bool = True
    log_dir: Path = field(default_factory=lambda: ROOT / ".devstack" / "logs")
    quiet: bool = False


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class LocalStack:
    """Start with ``start()``, stop with ``stop()``; helpers drive it like a client would."""

    def __init__(
        self,
        options: StackOptions | None = None,
        template: dict[str, Any] | None = None,
        console: Console | None = None,
    ) -> None:
        self.options = options or StackOptions()
        self.template = template or load()
        self.plan: Plan = build_plan(self.template)
        self.console = console or Console(quiet=self.options.quiet)
        self.account = "123456789012"
        self.iam_secrets = {FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]: FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
        self.jwt_authorizers: dict[str, JwtAuthorizer] = {}
        # the local user pools (contract with the staff console): set by start()
        self.cognito_endpoint = ""
        self.staff_pool_id = ""
        self.staff_client_id = ""
        self.customer_pool_id = ""
        self.customer_client_id = ""
        self._tokens: dict[str, tuple[str, float]] = {}
        self.api_stage = self._stage()
        self.moto_url = ""
        self.resolver: Resolver | None = None
        self.workers: dict[str, Worker] = {}
        self.invoker = Invoker(self.workers, self.console, self.options.region, self.account)
        self.sqs_pollers: list[SqsPoller] = []
        self.stream_pollers: list[StreamPoller] = []
        self.schedulers: dict[str, Scheduler] = {}
        self.sweepers: list[TtlSweeper] = []
        self.ttl_marks = TtlMarks()
        self.front_door: FrontDoor | None = None
        self._moto: Any = None
        self._threads: list[threading.Thread] = []
        self.started_in_s = 0.0
        self._stopped = False
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.RLock()  # a boto3 session is not thread-safe
        self._session = boto3.session.Session()

    # ------------------------------------------------------------------ lifecycle
    def _stage(self) -> str:
        """The URL prefix the front door also accepts: the (first) API's stage name."""
        for stage in self.http_stages.values():
            if stage != "$default":
                return stage
        for api in resources_of(self.template, "AWS::Serverless::Api").values():
            return str(api.get("Properties", {}).get("StageName", "Prod"))
        return "Prod"

    @property
    def http_stages(self) -> dict[str, str]:
        """HttpApi logical id -> stage name (``$default`` when none is named)."""
        return {
            logical: str(res.get("Properties", {}).get("StageName", "$default"))
            for logical, res in resources_of(self.template, "AWS::Serverless::HttpApi").items()
        }

    @property
    def api_url(self) -> str:
        assert self.front_door is not None, "the stack is not started"
        return self.front_door.url

    def client(self, service: str) -> Any:
        """A boto3 client on the emulator (fake credentials; never real AWS)."""
        with self._clients_lock:
            return self._session.client(
                service,
                region_name=self.options.region,
                endpoint_url=self.moto_url,
                aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
                config=Config(
                    retries={"mode": "standard", "max_attempts": 3}, read_timeout=30, max_pool_connections=64
                ),
            )

    @property
    def sqs(self) -> Any:
        """A shared SQS client on the emulator."""
        return self.shared_client("sqs")

    @property
    def dynamodb(self) -> Any:
        """A shared DynamoDB client on the emulator (the table is ``table_name``)."""
        return self.shared_client("dynamodb")

    def shared_client(self, service: str) -> Any:
        """One client per service, shared by the pollers and helpers (boto3 clients are thread-safe)."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self.client(service)
            return self._clients[service]

    def start(self) -> LocalStack:
        started = time.perf_counter()
        from moto.server import ThreadedMotoServer

        from devstack import moto_patches

        moto_patches.install()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        for key, value in {**FAKE_CREDENTIALS, "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled"}.items():
            os.environ.setdefault(key, value)  # provision() builds its clients from the environment
        self.resolver = provision(
            endpoint_url=self.moto_url, region=self.options.region, template=self.template
        )
        self._start_pools()
        self._start_workers()
        self.build_loops()
        self._start_loops()
        self.front_door = FrontDoor(self, self.options.host, self.options.port)
        door = threading.Thread(target=self.front_door.server.serve_forever, name="front-door", daemon=True)
        door.start()
        self._threads.append(door)
        self.started_in_s = time.perf_counter() - started
        self._banner()
        return self

    def _start_pools(self) -> None:
        """The pools' ids, the demo users, and the front door's JWT authorizers."""
        assert self.resolver is not None
        refs = self.resolver.refs
        if "StaffUserPool" not in refs:
            return
        self.cognito_endpoint = self.moto_url
        self.staff_pool_id = refs["StaffUserPool"]
        self.staff_client_id = refs["StaffConsoleClient"]
        self.customer_pool_id = refs["CustomerUserPool"]
        self.customer_client_id = refs["CustomerWebClient"]
        create_demo_users(self.shared_client("cognito-idp"), self.staff_pool_id, self.customer_pool_id)
        self.jwt_authorizers = jwt_authorizers(self.template, self.resolver, self.moto_url)

    def token(self, role: str = "admin") -> str:
        """A real ID token of a demo user: a staff role (``store-staff``, ``marketing``, ``privacy``,
        ``admin``) or ``customer`` (Ana); signed in with USER_PASSWORD_AUTH, cached until near expiry."""
        cached = self._tokens.get(role)
        if cached and cached[1] > time.time() + 60:
            return cached[0]
        idp = self.shared_client("cognito-idp")
        if role == "customer":
            result = sign_in(idp, self.customer_client_id, DEMO_CUSTOMER_EMAIL)
        else:
            result = sign_in(idp, self.staff_client_id, DEMO_STAFF[role][0])
        token = str(result["IdToken"])
        self._tokens[role] = (token, time.time() + int(result.get("ExpiresIn", 3600)))
        return token

    def runtime_env(self, logical: str) -> dict[str, str]:
        """The worker's whole environment: the template's variables plus Lambda's runtime ones."""
        assert self.resolver is not None
        fn = self.plan.functions[logical]
        env = self.plan.environment(self.resolver, logical)
        env.update(
            {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LANG": "C.UTF-8",
                "TZ": "UTC",
                "PYTHONPATH": os.pathsep.join(str(p) for p in (fn.code_uri, *fn.layer_paths)),
                "PYTHONUNBUFFERED": "1",
                **FAKE_CREDENTIALS,
                "AWS_ENDPOINT_URL": self.moto_url,
                "AWS_REGION": self.options.region,
                "AWS_DEFAULT_REGION": self.options.region,
                "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
                "POWERTOOLS_TRACE_DISABLED": "1",
                "AWS_LAMBDA_FUNCTION_NAME": logical,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{logical}",
                "LAMBDA_TASK_ROOT": str(fn.code_uri),
                "_HANDLER": fn.handler,
            }
        )
        if os.environ.get("DEVSTACK_CALL_LOG"):  # record AWS calls (devstack/calls.py)
            env.update({"DEVSTACK_CALL_LOG": os.environ["DEVSTACK_CALL_LOG"], "DEVSTACK_ROOT": str(ROOT)})
        return env

    def _start_workers(self) -> None:
        for logical, fn in self.plan.functions.items():
            worker = Worker(fn, self.runtime_env(logical), self.options.log_dir / f"{logical}.log")
            worker.spawn()  # warm: the handler is imported in the background, in parallel
            self.workers[logical] = worker

    def build_loops(self) -> None:
        """A poller per SQS and stream source, a TTL sweeper per TTL table, a scheduler per schedule."""
        assert self.resolver is not None
        r = self.resolver
        for source in self.plan.sqs:
            poller = SqsPoller(
                source,
                r.refs[source.queue],
                r.attrs[(source.queue, "Arn")],
                self.invoker,
                self.shared_client,
                self.options.region,
                self.options.retry_delay_s,
            )
            self.sqs_pollers.append(poller)
        for stream in self.plan.streams:
            self.stream_pollers.append(
                StreamPoller(
                    stream,
                    r.attrs[(stream.table, "StreamArn")],
                    self.invoker,
                    self.shared_client,
                    self.options.region,
                    self.options.retry_delay_s,
                    r.refs[stream.on_failure] if stream.on_failure else None,
                    self.ttl_marks,
                )
            )
        for logical, res in resources_of(self.template, "AWS::DynamoDB::Table").items():
            ttl = res["Properties"].get("TimeToLiveSpecification") or {}
            if ttl.get("Enabled"):
                keys = [k["AttributeName"] for k in res["Properties"]["KeySchema"]]
                self.sweepers.append(
                    TtlSweeper(
                        r.refs[logical],
                        ttl["AttributeName"],
                        keys,
                        self.shared_client,
                        self.ttl_marks,
                        self.options.ttl_interval_s,
                    )
                )
        for schedule in self.plan.schedules:
            self.schedulers[f"{schedule.function}.{schedule.event}"] = Scheduler(
                schedule, self.invoker, self.options.region, self.account
            )

    def _start_loops(self) -> None:
        loops: list[Loop] = [*self.sqs_pollers, *self.stream_pollers, *self.sweepers]
        if self.options.schedules:
            loops.extend(s for s in self.schedulers.values() if s.source.enabled)
        for loop in loops:
            loop.report = self.console.line
            loop.start()
            self._threads.append(loop)

    def stop(self) -> None:
        """Stop pollers, the front door, the workers and the emulator (in that order); idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for loop in [*self.sqs_pollers, *self.stream_pollers, *self.sweepers, *self.schedulers.values()]:
            loop.stop()
        if self.front_door is not None:
            self.front_door.server.shutdown()
            self.front_door.server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        for worker in self.workers.values():
            worker.kill()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _banner(self) -> None:
        assert self.resolver is not None
        line = self.console.line
        line(f"devstack: AWS emulator (moto) at {self.moto_url}")
        tables = ", ".join(self.resolver.refs[t] for t in self.plan.tables)
        line(f"          table(s) {tables}; {len(self.plan.queues)} queues; parameters {local_parameters()}")
        line(f"devstack: API at {self.api_url}  (also under /{self.api_stage}/...)")
        if self.staff_pool_id:
            line(
                f"devstack: user pools on {self.cognito_endpoint}: staff {self.staff_pool_id} "
                f"(client {self.staff_client_id}), customers {self.customer_pool_id} "
                f"(client {self.customer_client_id})"
            )
            line(
                f"          demo users {', '.join(e for e, _ in DEMO_STAFF.values())} "
                f"and {DEMO_CUSTOMER_EMAIL}, password {DEMO_PASSWORD}"
            )
            line(
                "          a token: python -m devstack token --role store-staff  (or --customer);"
                " send 'Authorization: Bearer <token>'"
            )
        line(f"devstack: functions (logs in {self.options.log_dir}):")
        for logical in self.plan.functions:
            triggers = self._triggers(logical) or ["(no event source: invoke on demand)"]
            line(f"  {logical:<30} {triggers[0]}")
            for more in triggers[1:]:
                line(f"  {'':<30} {more}")
        for sweeper in self.sweepers:
            line(f"devstack: TTL sweep of {sweeper.table}.{sweeper.attribute} every {sweeper.interval_s:g} s")
        line(f"devstack: ready in {self.started_in_s:.1f} s. Ctrl-C stops everything.")

    def _triggers(self, logical: str) -> list[str]:
        assert self.resolver is not None
        out = [
            f"api {r.method} {r.path}" + (f" [{r.auth}]" if r.auth else "")
            for r in self.plan.routes
            if r.function == logical
        ]
        for s in self.plan.sqs:
            if s.function == logical:
                name = self.resolver.attrs[(s.queue, "QueueName")]
                failures = ", ReportBatchItemFailures" if s.report_failures else ""
                out.append(f"sqs {name} (batch {s.batch_size}{failures})")
        for st in self.plan.streams:
            if st.function == logical:
                dest = (
                    f", on failure -> {self.resolver.attrs[(st.on_failure, 'QueueName')]}"
                    if st.on_failure
                    else ""
                )
                out.append(
                    f"stream {st.table} from {st.starting_position} (batch {st.batch_size}, "
                    f"{st.max_retries} retries{', bisect' if st.bisect else ''}{dest}, "
                    f"{len(st.filters)} filter(s))"
                )
        for key, sched in self.schedulers.items():
            if sched.source.function == logical:
                nxt = sched.next_run() if self.options.schedules and sched.source.enabled else None
                when = f"next {nxt:%Y-%m-%d %H:%M:%S}Z" if nxt else "on demand only"
                out.append(f"schedule {sched.source.expression} ({when}; invoke-schedule {key})")
        return out

    # ------------------------------------------------------------------ helpers
    def queue_url(self, logical: str) -> str:
        assert self.resolver is not None
        return self.resolver.refs[logical]

    @property
    def table_name(self) -> str:
        assert self.resolver is not None
        return self.resolver.refs[self.plan.tables[0]]

    def queue_depth(self, logical: str) -> int:
        """Visible + in flight + delayed messages of a queue."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url(logical),
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    def _busy(self) -> str | None:
        """Why the pipeline is not quiet right now, or None."""
        if self.invoker.running:
            return f"{self.invoker.running} invocation(s) running"
        for loop in [*self.sqs_pollers, *self.stream_pollers]:
            if loop.busy:
                return f"{loop.name} is delivering"
        for logical in self.plan.consumed_queues():
            depth = self.queue_depth(logical)
            if depth:
                return f"{logical} holds {depth} message(s)"
        return None

    def wait_quiet(self, timeout: float = 60.0) -> None:
        """Block until no queue with a consumer holds messages, every stream poller has read
        everything (two idle polls after the pipeline looked quiet) and nothing is running."""
        deadline = time.monotonic() + timeout
        marks: list[int] | None = None
        reason: str | None = "not checked"
        while time.monotonic() < deadline:
            reason = self._busy()
            if reason is None:
                now = [p.idle_polls for p in self.stream_pollers]
                if marks is None:
                    marks = now
                elif all(n - m >= 2 for n, m in zip(now, marks, strict=True)):
                    if self._busy() is None:
                        return
                    marks = None
            else:
                marks = None
            time.sleep(0.1)
        raise TimeoutError(f"pipeline not quiet after {timeout} s: {reason}")

    def invoke_schedule(self, name: str) -> Outcome:
        """Invoke a schedule now, by ``Function.Event``, function logical id or event name."""
        matches = [
            s for key, s in self.schedulers.items() if name in {key, s.source.function, s.source.event}
        ]
        if len(matches) != 1:
            known = ", ".join(self.schedulers) or "none"
            raise KeyError(f"{name!r} matches {len(matches)} schedules (known: {known})")
        return matches[0].fire("schedule")  # type: ignore[no-any-return]

    def sweep_ttl(self, now: float | None = None) -> int:
        """Run every TTL sweeper once, now."""
        return sum(s.sweep(now) for s in self.sweepers)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> HttpResponse:
        """One HTTP request to the front door."""
        req = urllib.request.Request(  # noqa: S310 - our own http://127.0.0.1 URL
            self.api_url + path, data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310
                return HttpResponse(resp.status, dict(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as err:
            return HttpResponse(err.code, dict(err.headers.items()), err.read())

    def api(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        staff: bool = True,
        role: str = "admin",
        headers: dict[str, str] | None = None,
    ) -> HttpResponse:
        """Call the API with a JSON body, with the credentials its route takes: a real ID token of
        the demo user of ``role`` (``customer`` for Ana) on JWT routes, a SigV4 signature with the
        local credentials on AWS_IAM routes; nothing when ``staff=False`` or the route is public."""
        hdrs = dict(headers or {})
        body = None
        if json is not None:
            body = _dumps(json).encode()
            hdrs.setdefault("Content-Type", "application/json")
        auth = self._route_auth(method, path) if staff else None
        if auth == "AWS_IAM":
            hdrs = sigv4.sign(
                method=method,
                url=self.api_url + path,
                headers=hdrs,
                body=body,
                key=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                secret=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
                region=self.options.region,
            )
        elif auth is not None:
            hdrs.setdefault("Authorization", f"Bearer {self.token(role)}")
        return self.request(method, path, body, hdrs)

    def _route_auth(self, method: str, path: str) -> str | None:
        assert self.front_door is not None, "the stack is not started"
        route, _, _ = self.front_door.router.match(method, urllib.parse.urlsplit(path).path)
        return route.auth if route else None

    def post_webhook(
        self, channel: str, document: Any, *, timestamp: int | None = None, secret: str | None = None
    ) -> HttpResponse:
        """POST a delivery to ``/webhooks/{channel}``, signed now with the local secret."""
        from loyalty.ingest.signature import signed_headers

        body = json.dumps(document, ensure_ascii=False).encode()
        ts = int(time.time()) if timestamp is None else timestamp
        key = secret if secret is not None else local_secrets()[channel][0]
        return self.request("POST", f"/webhooks/{channel}", body, signed_headers(key, ts, body))
