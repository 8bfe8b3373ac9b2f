"""E-mail over SMTP with STARTTLS (stdlib smtplib): a server that does not offer STARTTLS gets nothing, not even
the login; the certificate is checked (the system's CAs, or ``ca_file``'s)."""

from __future__ import annotations

import asyncio
import email.policy
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from contract.notifications import NotificationEvent

from .delivery import Delivered, DeliveryError, approval_link, detail_lines, link_line, ssl_context


def email_message(event: NotificationEvent, public_url: str | None, sender: str, recipients: list[str]) -> EmailMessage:
    link = approval_link(public_url, event.deployment_id)
    # Headers are not folded below RFC 5322's hard limit: the library folds a long subject right after "Subject:",
    # which some readers show with a leading blank.
    message = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=998))
    message["Subject"] = event.headline()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(event.time)
    # The same Message-ID on every attempt: mail systems drop a second copy of one message.
    domain = sender.rsplit("@", 1)[-1] if "@" in sender else "bicep-orchestrator.invalid"
    message["Message-ID"] = f"<{event.id}@{domain}>"
    message["X-Orchestrator-Event-Id"] = event.id
    lines = [event.headline(), "", *detail_lines(event), "", link_line(event, link), ""]
    message.set_content("\n".join(lines))
    return message


@dataclass
class EmailSink:
    name: str
    host: str
    port: int
    sender: str
    recipients: list[str]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None

    async def send(self, event: NotificationEvent, *, public_url: str | None, timeout: float) -> Delivered:
        message = email_message(event, public_url, self.sender, self.recipients)
        return await asyncio.to_thread(self._send, message, timeout)

    def _send(self, message: EmailMessage, timeout: float) -> Delivered:
        context = ssl_context(self.ca_file)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=timeout) as smtp:
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(
                        f"sink {self.name}: the SMTP server {self.host}:{self.port} does not offer STARTTLS; nothing "
                        "is sent in plaintext (use the server's submission port, usually 587)",
                        retryable=False,
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(message)
        except DeliveryError:
            raise
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"sink {self.name}: the SMTP server's certificate is not trusted ({exc.verify_message}); give the "
                "sink a ca_file with its CA",
                retryable=False,
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"sink {self.name}: the SMTP server refused the login of {self.username} ({exc.smtp_code}); check "
                "the username and the password's variable or file",
                retryable=False,
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(
                f"sink {self.name}: every recipient was refused ({', '.join(exc.recipients)})", retryable=False
            ) from None
        except smtplib.SMTPResponseException as exc:
            transient = 400 <= exc.smtp_code < 500
            answer = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            raise DeliveryError(
                f"sink {self.name}: the SMTP server answered {exc.smtp_code} {answer[:200]}",
                retryable=transient,
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"sink {self.name}: SMTP {self.host}:{self.port} failed ({type(exc).__name__}: {exc})", retryable=True
            ) from None
        accepted = len(self.recipients) - len(refused)
        return Delivered(detail=f"accepted for {accepted} of {len(self.recipients)} recipient(s)")
