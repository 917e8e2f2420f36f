"""The whole local stack in one foreground command: ``make run`` (``python -m infra.local.stack``).

    python -m infra.local.stack --port 8000 --moto-port 5000 [--workers 4] [--no-demo]

In order, it starts the AWS emulator (a subprocess), creates the resources from
``infra/resources.yaml``, serves a JWKS from the local identity provider, starts the payment
emulators (localstripe for Stripe as a subprocess, with our webhook registered; the Alipay and
WeChat Pay gateways in-process), computes the app's environment, then starts the API gateway's
workers and the event pump (subprocesses, with that environment) while the demo data is seeded.
When ``/health`` answers it writes ``.local/stack-<port>.json`` (what ``make token``,
``make tick`` and the tests read), prints the URLs and stays in the foreground. Ctrl-C or
SIGTERM stops everything it started and removes the stack file; the children also stop by
themselves if this process dies.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from chalicelib.adapters.payments.card import WEBHOOK_EVENTS as STRIPE_WEBHOOK_EVENTS
from infra.local.emulators.localstripe_server import read_ready_file, register_webhook
from infra.local.hosted_ui import User
from infra.local.identity import LocalIdentityProvider, mint_for_stack
from infra.local.provision import provision
from infra.local.web_apps import write_app_config

log = logging.getLogger("infra.local.stack")  # not __name__: these run as __main__

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = REPO_ROOT / ".local"
WEB_ROOT = REPO_ROOT / "web"
HOST = "127.0.0.1"
REGION = "us-east-1"
# The public web clients of the local identity provider: (app, client id). Each signs in
# at <api>/<app>/callback and returns to <api>/<app>/ after signing out.
WEB_CLIENTS = (("shop", "orderdesk-local-shop"), ("console", "orderdesk-local-console"))
READY_TIMEOUT_SECONDS = 120.0
_STOP_GRACE_SECONDS = 10.0
EMULATOR_START_SECONDS = 30.0
CARD_WEBHOOK_PATH = "/webhooks/payments/card"
STRIPE_WEBHOOK_NAME = "orderdesk"
# In-process gateway emulators: (stack file key, module, class, name). A module that cannot
# be imported is skipped with a warning; the rest of the stack runs without it.
GATEWAY_EMULATORS = (
    ("alipay", "infra.local.emulators.alipay", "AlipayEmulator", "Alipay"),
    ("wechat_pay", "infra.local.emulators.wechat_pay", "WeChatPayEmulator", "WeChat Pay"),
    ("carrier", "infra.local.emulators.carrier", "CarrierEmulator", "carrier"),
)


def stack_file_for(port: int, state_dir: Path = STATE_DIR) -> Path:
    """Where the stack serving the API on ``port`` describes itself."""
    return state_dir / f"stack-{port}.json"


def read_stack_file(port: int, state_dir: Path = STATE_DIR) -> dict[str, Any]:
    path = stack_file_for(port, state_dir)
    if not path.exists():
        raise FileNotFoundError(
            f"no local stack on port {port} ({path} not found); start one with "
            f"`make run PORT={port}`"
        )
    document: dict[str, Any] = json.loads(path.read_text())
    return document


class StartupFailed(Exception):
    pass


class _StopRequested(Exception):
    pass


@dataclass
class StackOptions:
    port: int = 8000
    moto_port: int = 5000
    workers: int = 4
    demo: bool = True
    stage: str = "local"
    state_dir: Path = STATE_DIR
    ready_timeout: float = READY_TIMEOUT_SECONDS
    # Seconds the simulated warehouse staff take per step (0: no simulator) and the
    # emulated carrier per tracking step.
    warehouse_delay: float = 10.0
    carrier_step: float = 20.0
    # DynamoDB's conflicts and throttling in the AWS emulator (infra/local/aws_emulator.py).
    contention: bool = False
    # Warehouses the simulator leaves to people (the console's warehouse screen).
    manual_warehouses: tuple[str, ...] = ()


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None


@dataclass
class LocalStack:
    options: StackOptions
    env: dict[str, str] = field(default_factory=dict)
    stack_file: Path | None = None
    _children: dict[str, _Child] = field(default_factory=dict)
    _identity: LocalIdentityProvider | None = None
    _gateway_emulators: dict[str, Any] = field(default_factory=dict)
    _emulator_urls: dict[str, str] = field(default_factory=dict)
    _stripe_publishable_key: str = ""
    _stop_requested: bool = False
    _socket_ports: tuple[int, int] = (0, 0)

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.options.port}"

    @property
    def storefront_url(self) -> str:
        return f"{self.api_url}/shop/"

    @property
    def console_url(self) -> str:
        return f"{self.api_url}/console/"

    @property
    def moto_url(self) -> str:
        return f"http://{HOST}:{self.options.moto_port}"

    @property
    def web_config_dir(self) -> Path:
        return self.options.state_dir / f"web-{self.options.port}"

    @property
    def gateway_ready_file(self) -> Path:
        return self.options.state_dir / f"gateway-{self.options.port}.ready.json"

    @property
    def serving_file(self) -> Path:
        """Exists once the stack can serve; until then the app's /health answers 503."""
        return self.options.state_dir / f"serving-{self.options.port}"

    def request_stop(self) -> None:
        self._stop_requested = True

    # --- starting ---

    def start(self) -> None:
        options = self.options
        options.state_dir.mkdir(parents=True, exist_ok=True)
        (options.state_dir / "logs").mkdir(exist_ok=True)
        self._check_port_free(options.port, "PORT")
        self._check_port_free(options.moto_port, "MOTO_PORT")
        self.gateway_ready_file.unlink(missing_ok=True)
        self.serving_file.unlink(missing_ok=True)
        stack_file = stack_file_for(self.options.port, self.options.state_dir)
        stack_file.with_name(f".{stack_file.name}.pending").unlink(missing_ok=True)
        self._isolate_from_real_aws()

        started = time.monotonic()
        self._start_emulator()
        env = self._provision()
        env.update(self._start_identity())
        env.update(self._start_stripe())
        env.update(self._start_gateway_emulators())
        env.update(self._socket_urls())
        self.env = self._app_env(env)
        self._write_web_config()

        # The seed and the gateway's workers start side by side; both must finish.
        seeding = self._start_seeding() if options.demo else None
        self._spawn(
            "gateway",
            [
                "infra.local.gateway",
                "--port",
                str(options.port),
                "--workers",
                str(options.workers),
                "--ready-file",
                str(self.gateway_ready_file),
                "--parent-pid",
                str(os.getpid()),
                "--web-root",
                str(WEB_ROOT),
                "--web-config-dir",
                str(self.web_config_dir),
            ],
        )
        self._spawn("pump", ["infra.local.pump", "--parent-pid", str(os.getpid())])
        self._spawn(
            "websocket",
            [
                "infra.local.websocket",
                "--ws-port",
                str(self._socket_ports[0]),
                "--callback-port",
                str(self._socket_ports[1]),
                "--parent-pid",
                str(os.getpid()),
            ],
        )
        if options.warehouse_delay > 0:
            self._spawn(
                "warehouse",
                [
                    "infra.local.warehouse",
                    "--delay",
                    str(options.warehouse_delay),
                    *(f"--manual={w}" for w in options.manual_warehouses),
                    "--parent-pid",
                    str(os.getpid()),
                ],
            )
        self._wait_for_gateway()
        if seeding is not None:
            self._wait_for_seed(seeding)
        self._wait_for_health(starting_is_enough=True)
        # The stack file is first written aside, to check that a token minted from it as
        # `make token` mints one is accepted; it is in place before /health says 200.
        pending = self._write_stack_file(pending=True)
        self._check_can_serve(pending)
        final = stack_file_for(self.options.port, self.options.state_dir)
        pending.replace(final)
        self.stack_file = final
        self.serving_file.touch()
        self._wait_for_health()
        log.info("ready in %.1f s", time.monotonic() - started)

    def _check_port_free(self, port: int, variable: str) -> None:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
            except OSError:
                raise StartupFailed(
                    f"port {port} is in use (another stack?); choose another with {variable}=..."
                ) from None

    def _isolate_from_real_aws(self) -> None:
        # Nothing here may ever reach a real AWS account.
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            os.environ.pop(name, None)
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
            }
        )

    def _start_emulator(self) -> None:
        log_path = self.options.state_dir / "logs" / f"aws-emulator-{self.options.moto_port}.log"
        self._spawn(
            "aws emulator",
            [
                "infra.local.aws_emulator",
                "--port",
                str(self.options.moto_port),
                *(["--contention"] if self.options.contention else []),
            ],
            env=dict(os.environ),
            log_path=log_path,
        )
        deadline = time.monotonic() + 30
        while True:
            self._check_alive("aws emulator")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((HOST, self.options.moto_port), timeout=0.5),
            ):
                return
            if time.monotonic() > deadline:
                raise StartupFailed(f"the AWS emulator did not listen on {self.moto_url}")
            self._pause(0.1)

    def _provision(self) -> dict[str, str]:
        log.info("creating resources from infra/resources.yaml in %s", self.moto_url)
        try:
            return dict(provision(self.moto_url, self.options.stage))
        except Exception as exc:
            raise StartupFailed(f"provisioning failed: {exc}") from exc

    def _start_identity(self) -> dict[str, str]:
        self._identity = LocalIdentityProvider(self.options.state_dir / "idp-key.pem")
        self._identity.start(host=HOST)
        for app, client_id in WEB_CLIENTS:
            self._identity.add_web_client(
                client_id, [f"{self.api_url}/{app}/callback"], [f"{self.api_url}/{app}/"]
            )
        users = _demo_users() if self.options.demo else ()
        self._identity.set_users(
            [User(u.id, u.groups, u.email, u.name, u.phone, u.locale) for u in users]
        )
        for user in users:  # the pool knows the demo users, their emails verified
            self._identity.set_user(
                user.id, email=user.email, email_verified="true", name=user.name
            )
        identity_env: dict[str, str] = self._identity.env()
        return identity_env

    def _start_stripe(self) -> dict[str, str]:
        """localstripe on a free port, our card webhook registered with a fresh secret."""
        ready_file = self.options.state_dir / f"stripe-{self.options.port}.ready.json"
        ready_file.unlink(missing_ok=True)
        self._spawn(
            "stripe emulator",
            [
                "infra.local.emulators.localstripe_server",
                "--port",
                "0",
                "--ready-file",
                str(ready_file),
                "--parent-pid",
                str(os.getpid()),
            ],
            env=dict(os.environ),
            log_path=self.options.state_dir / "logs" / f"stripe-emulator-{self.options.port}.log",
        )
        started = time.monotonic()
        while (url := read_ready_file(ready_file)) is None:
            self._check_alive("stripe emulator")
            if time.monotonic() - started > EMULATOR_START_SECONDS:
                raise StartupFailed("the Stripe emulator (localstripe) did not start")
            self._pause(0.1)
        ready_file.unlink(missing_ok=True)
        secret = f"whsec_{secrets.token_urlsafe(24)}"
        try:
            register_webhook(
                url,
                STRIPE_WEBHOOK_NAME,
                f"{self.api_url}{CARD_WEBHOOK_PATH}",
                secret,
                STRIPE_WEBHOOK_EVENTS,
            )
        except (OSError, RuntimeError) as exc:
            raise StartupFailed(f"registering the card webhook with localstripe: {exc}") from exc
        self._emulator_urls["stripe"] = url
        self._stripe_publishable_key = f"pk_test_{secrets.token_hex(12)}"
        return {
            "STRIPE_API_KEY": f"sk_test_{secrets.token_hex(12)}",  # localstripe takes any
            "STRIPE_API_BASE": url,
            "STRIPE_WEBHOOK_SECRET": secret,
        }

    def _start_gateway_emulators(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for key, module_name, class_name, title in GATEWAY_EMULATORS:
            try:
                module = importlib.import_module(module_name)
                emulator_class = getattr(module, class_name)
            except (ImportError, AttributeError) as exc:
                log.warning(
                    "the %s emulator is not available (%s): starting without it", title, exc
                )
                continue
            if key == "carrier":
                # Parcels belong to one run: their callbacks die with the run's API, and
                # pushing to those would hold up this run's parcels.
                parcels = self.options.state_dir / module.PARCELS_FILE
                parcels.unlink(missing_ok=True)
                emulator = emulator_class(
                    self.options.state_dir,
                    step_seconds=self.options.carrier_step,
                    webhook_url=self.api_url,  # EasyPost's and AfterShip's account webhooks
                )
            else:
                emulator = emulator_class(self.options.state_dir)
            self._gateway_emulators[key] = emulator  # stop() stops even a half-started one
            try:
                emulator.start(host=HOST)
                env.update(emulator.app_env())
            except Exception as exc:
                raise StartupFailed(f"the {title} emulator did not start: {exc}") from exc
            self._emulator_urls[key] = str(emulator.url)
        return env

    def _socket_urls(self) -> dict[str, str]:
        """Two free ports for the live support WebSocket and its @connections endpoint."""
        ports = []
        for _ in range(2):
            with socket.socket() as probe:
                probe.bind((HOST, 0))
                ports.append(probe.getsockname()[1])
        self._socket_ports = (ports[0], ports[1])
        self._emulator_urls["websocket"] = f"ws://{HOST}:{ports[0]}"
        return {
            "SUPPORT_SOCKET_URL": f"ws://{HOST}:{ports[0]}",
            "SUPPORT_SOCKET_CALLBACK_URL": f"http://{HOST}:{ports[1]}",
        }

    def _app_env(self, provisioned: dict[str, str]) -> dict[str, str]:
        """What the app's functions see, as Lambda would give it to them."""
        env = chalice_environment()
        env.update(provisioned)
        env.update(
            {
                "STAGE": self.options.stage,
                "PUBLIC_API_URL": self.api_url,  # providers' and carriers' notify URLs
                # Links in customer messages go to the shop this stack serves.
                "STOREFRONT_URL": os.environ.get("STOREFRONT_URL", self.storefront_url),
                "AWS_ENDPOINT_URL": self.moto_url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                # The shop's origin (a CORS origin has no path).
                "CORS_ALLOW_ORIGINS": os.environ.get("CORS_ALLOW_ORIGINS", self.api_url),
                "HEALTH_READY_FILE": str(self.serving_file.resolve()),
                # The key of verification codes' hashes, a secret in AWS: new for each run
                # (a code outlives neither its 10 minutes nor the run).
                "CONTACT_CODE_PEPPER": os.environ.get("CONTACT_CODE_PEPPER")
                or secrets.token_hex(32),
            }
        )
        return env

    def _write_web_config(self) -> None:
        """``/<app>/config.json``: the API, the app's sign-in client and the Stripe key."""
        identity = self._identity
        assert identity is not None, "the identity provider starts first"
        stripe_url = self._emulator_urls.get("stripe", "")
        for app, client_id in WEB_CLIENTS:
            document = {
                "api_url": self.api_url,
                "identity": identity.web_client_config(client_id),
                "stripe": {
                    "publishable_key": self._stripe_publishable_key,
                    "js_url": f"{stripe_url}/js.stripe.com/v3/" if stripe_url else "",
                },
            }
            write_app_config(self.web_config_dir, app, document)

    def _child_env(self) -> dict[str, str]:
        return {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}

    def _start_seeding(self) -> subprocess.Popen[bytes] | None:
        if importlib.util.find_spec("infra.local.demo_data") is None:
            log.warning("infra/local/demo_data.py is missing: starting without demo data")
            return None
        log.info("seeding demo data")
        child = self._spawn(
            "demo data", ["-c", "from infra.local.demo_data import seed; seed()"], module=False
        )
        return child.process

    def _spawn(
        self,
        name: str,
        args: list[str],
        *,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        module: bool = True,
    ) -> _Child:
        command = [sys.executable, *(["-m"] if module else []), *args]
        output = open(log_path, "ab") if log_path else None  # noqa: SIM115 - the child owns it
        try:
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env if env is not None else self._child_env(),
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                stdin=subprocess.DEVNULL,
            )
        finally:
            if output is not None:
                output.close()
        child = _Child(name, process, log_path)
        self._children[name] = child
        return child

    def _check_alive(self, name: str) -> None:
        child = self._children[name]
        code = child.process.poll()
        if code is not None:
            where = f"; see {child.log_path}" if child.log_path else ""
            raise StartupFailed(f"the {name} exited with status {code}{where}")

    def _pause(self, seconds: float) -> None:
        if self._stop_requested:
            raise _StopRequested()
        time.sleep(seconds)

    def _deadline_passed(self, started: float, what: str) -> None:
        if time.monotonic() - started > self.options.ready_timeout:
            raise StartupFailed(f"{what} took longer than {self.options.ready_timeout:.0f} s")

    def _wait_for_gateway(self) -> None:
        started = time.monotonic()
        while not self.gateway_ready_file.exists():
            self._check_alive("gateway")
            self._deadline_passed(started, "starting the API workers")
            self._pause(0.1)

    def _wait_for_seed(self, seeding: subprocess.Popen[bytes]) -> None:
        started = time.monotonic()
        while seeding.poll() is None:
            self._deadline_passed(started, "seeding the demo data")
            self._pause(0.2)
        if seeding.returncode != 0:
            raise StartupFailed(f"seeding the demo data failed (status {seeding.returncode})")

    def _wait_for_health(self, *, starting_is_enough: bool = False) -> None:
        """Until /health says 200 (or, with ``starting_is_enough``, until the app answers
        it at all: 503 ``starting`` means it runs but the stack is not declared ready)."""
        started = time.monotonic()
        while True:
            self._check_alive("gateway")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=5) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as error:
                if starting_is_enough and error.code == 503:
                    with contextlib.suppress(ValueError, OSError):
                        if json.loads(error.read()).get("error") == "starting":
                            return
            except (urllib.error.URLError, OSError):
                pass
            self._deadline_passed(started, "waiting for /health")
            self._pause(0.2)

    def _check_can_serve(self, stack_file: Path) -> None:
        """A token minted from the stack file as ``make token`` mints it is accepted, and the
        demo catalogue is there: only then may /health say 200."""
        token = mint_for_stack(stack_file, "stack-readiness", ["customers"], expires_in=60)
        started = time.monotonic()
        while True:
            self._check_alive("gateway")
            try:
                signed_in = urllib.request.Request(
                    f"{self.api_url}/me", headers={"Authorization": f"Bearer {token}"}
                )
                with urllib.request.urlopen(signed_in, timeout=5) as response:
                    token_works = response.status == 200
                catalogue = f"{self.api_url}/products?limit=1"
                with urllib.request.urlopen(catalogue, timeout=5) as response:
                    has_products = bool(json.loads(response.read()).get("items"))
                if token_works and (has_products or not self.options.demo):
                    return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            self._deadline_passed(started, "checking that tokens and the demo data work")
            self._pause(0.2)

    def _write_stack_file(self, *, pending: bool = False) -> Path:
        identity = self._identity
        assert identity is not None, "the identity provider starts first"
        document = {
            "api_url": self.api_url,
            "moto_url": self.moto_url,
            "issuer": identity.issuer,
            "jwks_url": identity.jwks_url,
            "jwt_client_id": identity.client_id,
            "storefront_url": self.storefront_url,
            # Per web app: its client id, the hosted UI's endpoints and its URLs.
            "web_clients": {
                app: identity.web_client_config(client_id) for app, client_id in WEB_CLIENTS
            },
            "env": self.env,
            "emulators": {
                "aws": self.moto_url,
                "identity": identity.issuer,
                **self._emulator_urls,
            },
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        path = stack_file_for(self.options.port, self.options.state_dir)
        if pending:
            path = path.with_name(f".{path.name}.pending")
        temp = path.with_name(f".{path.name}.{os.getpid()}")
        temp.write_text(json.dumps(document, indent=2, sort_keys=True))
        temp.replace(path)
        if not pending:
            self.stack_file = path
        return path

    def banner(self) -> str:
        port = self.options.port
        identity = self._identity
        assert identity is not None, "the identity provider starts first"
        stack_file = self.stack_file.relative_to(REPO_ROOT) if self.stack_file else "-"
        lines = [
            "",
            "orderdesk local stack is running",
            f"  Shop           {self.storefront_url}",
            f"  Console        {self.console_url}   (staff: ops, finance, support)",
            f"  API            {self.api_url}",
            f"  API docs       {self.api_url}/docs",
            f"  OpenAPI        {self.api_url}/openapi.json",
            f"  AWS emulator   {self.moto_url}   (moto; the app's AWS_ENDPOINT_URL)",
            f"  Identity       {identity.issuer}",
            f"  JWKS           {identity.jwks_url}",
            *self._payment_banner_lines(),
            f"  Support socket {self.env.get('SUPPORT_SOCKET_URL', '-')}   (WebSocket; "
            "@connections at SUPPORT_SOCKET_CALLBACK_URL)",
            f"  Stack file     {stack_file}",
            f"  Token          make token PORT={port} ID=alice GROUPS=customers",
            f"  Schedules      make tick PORT={port} JOB=<handler name> [DATE=YYYY-MM-DD]",
            "Press Ctrl-C to stop everything.",
            "",
        ]
        return "\n".join(lines)

    def _payment_banner_lines(self) -> list[str]:
        urls = self._emulator_urls
        stripe_url = urls.get("stripe", "-")
        lines = [f"  Stripe         {stripe_url}   (localstripe; the app's STRIPE_API_BASE)"]
        for key, _module, _class, title in GATEWAY_EMULATORS:
            lines.append(f"  {title:<15}{urls.get(key, '(not available)')}")
        return lines

    # --- running ---

    def wait(self) -> int:
        """Stay in the foreground until asked to stop or a vital child dies."""
        restart_after = 0.0
        while not self._stop_requested:
            for name in ("aws emulator", "stripe emulator", "gateway"):
                code = self._children[name].process.poll()
                if code is not None:
                    log.error("the %s exited (status %s); stopping the stack", name, code)
                    return 1
            pump = self._children.get("pump")
            now = time.monotonic()
            if pump is not None and pump.process.poll() is not None and now > restart_after:
                log.warning("the event pump exited (status %s); restarting it", pump.process.poll())
                self._spawn("pump", ["infra.local.pump", "--parent-pid", str(os.getpid())])
                restart_after = now + 5  # a pump that cannot start must not spin
            time.sleep(0.5)
        return 0

    # --- stopping ---

    def stop(self) -> None:
        """Stop every process this stack started (by id), newest first, and clean up."""
        if self.stack_file is not None:
            self.stack_file.unlink(missing_ok=True)
            self.stack_file = None
        for name in ("warehouse", "pump", "websocket", "gateway", "demo data"):
            self._stop_child(name)
        for emulator in self._gateway_emulators.values():
            with contextlib.suppress(Exception):
                emulator.stop()
        self._gateway_emulators.clear()
        self._emulator_urls.clear()
        if self._identity is not None:
            with contextlib.suppress(Exception):
                self._identity.stop()
            self._identity = None
        self._stop_child("stripe emulator")
        self._stop_child("aws emulator")
        for name in list(self._children):  # anything else it started
            self._stop_child(name)
        self.gateway_ready_file.unlink(missing_ok=True)
        self.serving_file.unlink(missing_ok=True)
        stack_file = stack_file_for(self.options.port, self.options.state_dir)
        stack_file.with_name(f".{stack_file.name}.pending").unlink(missing_ok=True)

    def _stop_child(self, name: str) -> None:
        child = self._children.pop(name, None)
        if child is None or child.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            child.process.send_signal(signal.SIGTERM)
        try:
            child.process.wait(timeout=_STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("the %s did not stop in time; killing it", name)
            child.process.kill()
            child.process.wait()


def _demo_users() -> tuple[Any, ...]:
    if importlib.util.find_spec("infra.local.demo_data") is None:
        return ()
    from infra.local.demo_data import DEMO_USERS

    return DEMO_USERS


def chalice_environment(
    config_path: Path = REPO_ROOT / ".chalice" / "config.json",
) -> dict[str, str]:
    """The environment variables every stage's functions get from ``.chalice/config.json``."""
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in (config.get("environment_variables") or {}).items()}


def parse_args(argv: list[str] | None) -> StackOptions:
    parser = argparse.ArgumentParser(
        prog="python -m infra.local.stack",
        description="Run orderdesk locally: AWS emulator, API gateway, event pump, demo data.",
    )
    parser.add_argument("--port", type=int, default=8000, help="the API's port")
    parser.add_argument("--moto-port", type=int, default=5000, help="the AWS emulator's port")
    parser.add_argument("--workers", type=int, default=4, help="API worker processes")
    parser.add_argument("--no-demo", action="store_true", help="start without demo data")
    parser.add_argument(
        "--warehouse-delay",
        type=float,
        default=float(os.environ.get("WAREHOUSE_DELAY", "10")),
        help="seconds the simulated warehouse takes per step (0: no simulator)",
    )
    parser.add_argument(
        "--carrier-step",
        type=float,
        default=float(os.environ.get("CARRIER_STEP", "20")),
        help="seconds between the emulated carrier's tracking steps",
    )
    parser.add_argument(
        "--manual-warehouse",
        action="append",
        default=[],
        metavar="WAREHOUSE",
        help="a warehouse the simulator leaves to people at the console (repeatable)",
    )
    parser.add_argument("--stage", default="local", help=argparse.SUPPRESS)
    parser.add_argument(
        "--contention",
        action="store_true",
        default=os.environ.get("CONTENTION", "") not in ("", "0"),
        help="the AWS emulator cancels overlapping transactions and throttles hot partitions",
    )
    args = parser.parse_args(argv)
    if args.port == args.moto_port:
        parser.error("--port and --moto-port must differ")
    return StackOptions(
        port=args.port,
        moto_port=args.moto_port,
        workers=args.workers,
        demo=not args.no_demo,
        stage=args.stage,
        warehouse_delay=args.warehouse_delay,
        carrier_step=args.carrier_step,
        contention=args.contention,
        manual_warehouses=tuple(args.manual_warehouse),
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s stack %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("infra.local").setLevel(logging.INFO)  # not boto3's chatter
    stack = LocalStack(parse_args(argv))

    def stop(signum: int, frame: FrameType | None) -> None:
        stack.request_stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    try:
        stack.start()
        print(stack.banner(), flush=True)
        return stack.wait()
    except _StopRequested:
        return 0
    except StartupFailed as exc:
        log.error("%s", exc)
        return 1
    finally:
        stack.stop()
        log.info("stopped")


if __name__ == "__main__":
    sys.exit(main())
