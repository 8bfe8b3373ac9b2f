"""The worker's notification file (``ORCHESTRATOR_NOTIFICATIONS``: YAML, or JSON, which YAML reads too): the sinks,
the events each receives, the subscription and resource group patterns it is for, and the delivery's retries.

Secrets are never in the file itself: the webhook's HMAC key, the Slack and Teams URLs (whoever has them can post)
and the SMTP password come from an environment variable (``*_env``) or a file (``*_file``) it names, read once at
worker start. A mistake is refused at start, naming the file, the field and what to do.

```yaml
delivery: {initial_interval_seconds: 2, maximum_interval_seconds: 300, give_up_after_seconds: 86400}
sinks:
  - name: audit
    type: webhook
    url: https://hooks.example.com/deployments
    secret_env: AUDIT_WEBHOOK_KEY
    events: [approval_needed, completed, failed, rolled_back]
    resource_groups: ["rg-prod-*"]
```
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import yaml

from contract.notifications import DeliveryPolicy, NotificationEvent, NotificationKind, NotificationRouting, SinkRoute

from .chat import SlackSink, TeamsSink
from .delivery import Delivered, DeliveryError
from .smtp import EmailSink
from .webhook import WebhookSink

ENV_NOTIFICATIONS = "ORCHESTRATOR_NOTIFICATIONS"
ENV_PUBLIC_URL = "ORCHESTRATOR_PUBLIC_URL"
SINK_TYPES = ("webhook", "slack", "teams", "email")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
MIN_KEY_BYTES = 16
MAX_FILE_BYTES = 256 * 1024


class NotificationConfigError(ValueError):
    """The notification file (or a secret it names) is unusable; the message names the file, field and fix."""


class Sink(Protocol):
    name: str

    async def send(self, event: NotificationEvent, *, public_url: str | None, timeout: float) -> Delivered: ...


@dataclass
class Notifier:
    """The worker's sinks (with their secrets, kept in memory only) and the routing the workflow reads."""

    routing: NotificationRouting
    sinks: dict[str, Sink] = field(default_factory=dict, repr=False)
    public_url: str | None = None
    source: str = ""

    async def send(self, event: NotificationEvent, sink_name: str) -> Delivered:
        """One attempt to deliver ``event`` to the named sink; raises ``DeliveryError``."""
        sink = self.sinks.get(sink_name)
        if sink is None:
            raise DeliveryError(
                f"sink {sink_name} is not in this worker's notification file ({self.source or 'none'}); give every "
                "worker of the task queue the same file",
                retryable=True,  # another worker of the task queue may have it
            )
        timeout = max(1.0, self.routing.delivery.attempt_timeout_seconds - 1.0)
        return await sink.send(event, public_url=self.public_url, timeout=timeout)

    def describe(self) -> str:
        link = self.public_url or f"no approval page link ({ENV_PUBLIC_URL} unset)"
        names = ", ".join(f"{n} ({type(s).__name__.removesuffix('Sink').lower()})" for n, s in self.sinks.items())
        return f"notifications from {self.source}: {names}; {link}"


def notifier_from_env(environ: Mapping[str, str] | None = None) -> Notifier | None:
    """The notifier ``ORCHESTRATOR_NOTIFICATIONS`` names (None when unset)."""
    env = os.environ if environ is None else environ
    path = env.get(ENV_NOTIFICATIONS)
    if not path:
        return None
    return load_notifications(Path(path), env, public_url=_public_url(env))


def _public_url(env: Mapping[str, str]) -> str | None:
    raw = (env.get(ENV_PUBLIC_URL) or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise NotificationConfigError(
            f"{ENV_PUBLIC_URL}={raw!r} is not the team service's base URL; give it as https://host[:port][/path] "
            "(the approval page is {base}/ui/deployments/<id>)"
        )
    return raw.rstrip("/")


def load_notifications(
    path: Path, environ: Mapping[str, str] | None = None, *, public_url: str | None = None
) -> Notifier:
    env = os.environ if environ is None else environ
    where = f"the notification file {path} ({ENV_NOTIFICATIONS})"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotificationConfigError(
            f"cannot read {where}: {exc.strerror or exc}; point {ENV_NOTIFICATIONS} at a readable file or unset it"
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise NotificationConfigError(f"{where} is larger than {MAX_FILE_BYTES // 1024} KiB; is it the right file?")
    try:
        doc = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise NotificationConfigError(f"{where} is not valid YAML or JSON{at}: fix its syntax") from None
    reader = _Reader(where, env, path.parent)
    return reader.notifier(doc, public_url=public_url)


class _Reader:
    def __init__(self, where: str, env: Mapping[str, str], folder: Path) -> None:
        self.where = where
        self.env = env
        self.folder = folder

    def fail(self, field_name: str, problem: str, fix: str) -> NotificationConfigError:
        return NotificationConfigError(f"{self.where}: {field_name}: {problem}; {fix}")

    def notifier(self, doc: Any, *, public_url: str | None) -> Notifier:
        if not isinstance(doc, dict):
            raise self.fail("top level", "is not a mapping", "write `sinks:` with a list of sinks")
        unknown = set(doc) - {"sinks", "delivery"}
        if unknown:
            raise self.fail(
                ", ".join(sorted(map(str, unknown))), "unknown field", "the top level takes `sinks` and `delivery`"
            )
        delivery = self.delivery(doc.get("delivery"))
        entries = doc.get("sinks")
        if not isinstance(entries, list) or not entries:
            raise self.fail("sinks", "missing or empty", "list at least one sink (or unset the variable)")
        routes: list[SinkRoute] = []
        sinks: dict[str, Sink] = {}
        for index, entry in enumerate(entries):
            route, sink = self.sink(index, entry)
            if route.name in sinks:
                raise self.fail(f"sinks[{index}].name", f"{route.name!r} is used twice", "give each sink its own name")
            routes.append(route)
            sinks[route.name] = sink
        routing = NotificationRouting(sinks=routes, delivery=delivery)
        return Notifier(routing=routing, sinks=sinks, public_url=public_url, source=self.where)

    def delivery(self, doc: Any) -> DeliveryPolicy:
        if doc is None:
            return DeliveryPolicy()
        if not isinstance(doc, dict):
            raise self.fail("delivery", "is not a mapping", "write e.g. `delivery: {initial_interval_seconds: 2}`")
        fields = DeliveryPolicy.model_fields
        values: dict[str, float] = {}
        for key, value in doc.items():
            if key not in fields:
                raise self.fail(f"delivery.{key}", "unknown field", f"use one of {', '.join(fields)}")
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise self.fail(f"delivery.{key}", f"{value!r} is not a positive number of seconds", "give one")
            values[key] = float(value)
        policy = DeliveryPolicy(**values)
        if policy.maximum_interval_seconds < policy.initial_interval_seconds:
            raise self.fail(
                "delivery.maximum_interval_seconds", "is below initial_interval_seconds", "raise it or lower the other"
            )
        return policy

    def sink(self, index: int, doc: Any) -> tuple[SinkRoute, Sink]:
        at = f"sinks[{index}]"
        if not isinstance(doc, dict):
            raise self.fail(at, "is not a mapping", "write each sink as `- name: ...` with its fields")
        name = doc.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise self.fail(f"{at}.name", f"{name!r} is not a sink name", "use letters, digits, '.', '_' or '-'")
        at = f"sinks[{index}] ({name})"
        kind = doc.get("type")
        if kind not in SINK_TYPES:
            raise self.fail(f"{at}.type", f"{kind!r} is not a sink type", f"use one of {', '.join(SINK_TYPES)}")
        allowed = {"name", "type", "events", "subscriptions", "resource_groups", "ca_file", *_FIELDS[kind]}
        unknown = set(doc) - allowed
        if unknown:
            raise self.fail(
                f"{at}.{sorted(map(str, unknown))[0]}",
                f"unknown field for a {kind} sink",
                f"a {kind} sink takes {', '.join(sorted(allowed))}",
            )
        route = SinkRoute(
            name=name,
            kinds=self.kinds(at, doc.get("events")),
            subscriptions=self.patterns(f"{at}.subscriptions", doc.get("subscriptions")),
            resource_groups=self.patterns(f"{at}.resource_groups", doc.get("resource_groups")),
        )
        ca_file = self.path(f"{at}.ca_file", doc.get("ca_file"))
        sink: Sink
        if kind == "webhook":
            url = self.url(f"{at}.url", doc.get("url"))
            key = self.secret(at, doc, "secret", "the HMAC key receivers check the signature with")
            if len(key.encode()) < MIN_KEY_BYTES:
                raise self.fail(f"{at}.secret", f"the key is shorter than {MIN_KEY_BYTES} bytes",
                                "use a random key, e.g. `openssl rand -hex 32`")  # fmt: skip
            sink = WebhookSink(name=name, url=url, key=key.encode(), ca_file=ca_file)
        elif kind in ("slack", "teams"):
            if "url" in doc:
                raise self.fail(
                    f"{at}.url",
                    f"a {kind} webhook URL is a secret (whoever has it can post)",
                    "put it in an environment variable (url_env) or a file (url_file)",
                )
            url = self.url(f"{at}.url", self.secret(at, doc, "url", f"the {kind} webhook URL"))
            sink = (
                SlackSink(name=name, url=url, ca_file=ca_file)
                if kind == "slack"
                else TeamsSink(name=name, url=url, ca_file=ca_file)
            )
        else:
            sink = self.email(at, name, doc, ca_file)
        return route, sink

    def email(self, at: str, name: str, doc: dict[str, Any], ca_file: Path | None) -> EmailSink:
        host = doc.get("host")
        if not isinstance(host, str) or not host.strip():
            raise self.fail(f"{at}.host", "missing", "name the SMTP server (its STARTTLS submission port is 587)")
        port = doc.get("port", 587)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise self.fail(f"{at}.port", f"{port!r} is not a port", "give the SMTP submission port, e.g. 587")
        sender = doc.get("from")
        if not isinstance(sender, str) or "@" not in sender:
            raise self.fail(f"{at}.from", f"{sender!r} is not an address", "give the sender, e.g. deploy@example.com")
        recipients = doc.get("to")
        if isinstance(recipients, str):
            recipients = [recipients]
        if not isinstance(recipients, list) or not recipients:
            raise self.fail(f"{at}.to", "no recipient", "list at least one address")
        for address in recipients:
            if not isinstance(address, str) or "@" not in address or any(c in address for c in "\r\n,"):
                raise self.fail(f"{at}.to", f"{address!r} is not an address", "list plain addresses")
        username = doc.get("username")
        if username is not None and not isinstance(username, str):
            raise self.fail(f"{at}.username", "is not text", "give the SMTP login name")
        password: str | None = None
        if "password" in doc:
            raise self.fail(f"{at}.password", "a password is never written in the file",
                            "put it in an environment variable (password_env) or a file (password_file)")  # fmt: skip
        if "password_env" in doc or "password_file" in doc:
            password = self.secret(at, doc, "password", "the SMTP password")
            if not username:
                raise self.fail(f"{at}.username", "missing while a password is given", "give the login name")
        elif username:
            raise self.fail(f"{at}.password_env", "missing while a username is given",
                            "name the variable (password_env) or file (password_file) with the password")  # fmt: skip
        return EmailSink(name=name, host=host.strip(), port=port, sender=sender, recipients=list(recipients),
                         username=username, password=password, ca_file=ca_file)  # fmt: skip

    def kinds(self, at: str, value: Any) -> list[NotificationKind]:
        if value is None:
            return list(NotificationKind)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.fail(f"{at}.events", "is empty", "list event kinds, or leave the field out for all")
        names = [k.value for k in NotificationKind]
        kinds: list[NotificationKind] = []
        for item in value:
            if item not in names:
                raise self.fail(f"{at}.events", f"{item!r} is not an event kind", f"use {', '.join(names)}")
            kinds.append(NotificationKind(item))
        return kinds

    def patterns(self, at: str, value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
            raise self.fail(at, "is not a list of glob patterns", 'write e.g. ["rg-prod-*"]')
        return list(value)

    def path(self, at: str, value: Any) -> Path | None:
        if value is None:
            return None
        path = Path(str(value))
        if not path.is_absolute():
            path = self.folder / path
        if not path.is_file():
            raise self.fail(at, f"{path} does not exist", "point it at a PEM file of the CA, or leave it out")
        return path

    def url(self, at: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(at, "missing", "give the receiver's https:// URL")
        value = value.strip()
        parts = urlsplit(value)
        host = (parts.hostname or "").lower()
        loopback = host in ("localhost", "::1") or host.startswith("127.")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            # Never name the URL itself: a Slack or Teams URL is the secret.
            raise self.fail(at, f"a {parts.scheme or 'scheme-less'} URL", "use https:// (plain http only on loopback)")
        if not host:
            raise self.fail(at, "the URL has no host", "give the receiver's full https:// URL")
        return value

    def secret(self, at: str, doc: dict[str, Any], stem: str, what: str) -> str:
        """``<stem>_env`` (a variable's name) or ``<stem>_file`` (a file's path): the value, never shown."""
        env_name, file_name = doc.get(f"{stem}_env"), doc.get(f"{stem}_file")
        if (env_name is None) == (file_name is None):
            raise self.fail(f"{at}.{stem}_env", f"give exactly one of {stem}_env or {stem}_file",
                            f"name the environment variable or the file holding {what}")  # fmt: skip
        if env_name is not None:
            value = self.env.get(str(env_name), "")
            if not value.strip():
                raise self.fail(f"{at}.{stem}_env", f"the variable {env_name} is unset or empty",
                                f"set it to {what} in the worker's environment")  # fmt: skip
            return value.strip()
        path = Path(str(file_name))
        if not path.is_absolute():
            path = self.folder / path
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise self.fail(f"{at}.{stem}_file", f"cannot read {path}: {problem}",
                            f"write {what} into it, readable by the worker") from None  # fmt: skip
        if not value:
            raise self.fail(f"{at}.{stem}_file", f"{path} is empty", f"write {what} into it")
        return value


_FIELDS: dict[str, set[str]] = {
    "webhook": {"url", "secret_env", "secret_file"},
    "slack": {"url", "url_env", "url_file"},
    "teams": {"url", "url_env", "url_file"},
    "email": {"host", "port", "from", "to", "username", "password", "password_env", "password_file"},
}
