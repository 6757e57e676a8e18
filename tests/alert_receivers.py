"""Local receivers for alert tests: an SMTP server that requires STARTTLS and a login
(aiosmtpd, with a self-signed certificate made here), and a Slack-shaped incoming webhook
(aiohttp) that can be told to fail its first answers."""

import datetime
import email
import ipaddress
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.processes import free_port

SMTP_USER, SMTP_PASSWORD = "alerts@example.test", "smtp-secret-" + "p" * 16


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, its own CA; (cert, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@dataclass
class Mailbox:
    host: str
    port: int
    ca_file: Path
    messages: list[tuple[list[str], EmailMessage, bool]] = field(default_factory=list)  # (to, message, over TLS)
    logins: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[tuple[list[str], EmailMessage, bool]]:
        with self.lock:
            return list(self.messages)


class _Handler:
    def __init__(self, box: Mailbox):
        self.box = box

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=default)
        with self.box.lock:
            self.box.messages.append((list(envelope.rcpt_tos), message, session.ssl is not None))
        return "250 OK"


def _authenticator(box: Mailbox):
    def check(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            box.logins.append(auth_data.login)
            return AuthResult(success=auth_data.login == SMTP_USER.encode()
                              and auth_data.password == SMTP_PASSWORD.encode())
        return AuthResult(success=False)
    return check


def start_smtp(directory: Path) -> tuple[Controller, Mailbox]:
    """Requires STARTTLS before anything (and before AUTH), then a login."""
    cert, key = self_signed(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox("127.0.0.1", free_port(), cert)
    controller = Controller(_Handler(box), hostname=box.host, port=box.port, tls_context=context,
                            require_starttls=True, auth_required=True, authenticator=_authenticator(box))
    controller.start()
    return controller, box


@dataclass
class SlackHook:
    """A Slack-shaped receiver: POST /services/... with a JSON body, answers `ok`."""
    received: list[dict] = field(default_factory=list)
    failures: int = 0  # answer 500 to this many first posts
    attempts: int = 0

    def app(self) -> web.Application:
        async def hook(request: web.Request) -> web.Response:
            self.attempts += 1
            body = await request.json()
            if self.failures > 0:
                self.failures -= 1
                return web.Response(status=500, text="internal_error")
            assert request.content_type == "application/json"
            self.received.append({"path": request.path, **body})
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/services/{rest:.*}", hook)
        return app
