"""Delivery channels: MQTT (a topic per crew, QoS 1), signed webhooks (HMAC-SHA256) and e-mail over SMTP.

Each channel sends one outbox message and raises `DeliveryError` when it was not delivered; the outbox retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol

import httpx

from cloud.store.alerts import OutboxMessage

SIGNATURE_HEADER = "Flurfunk-Signature"
TIMESTAMP_HEADER = "Flurfunk-Timestamp"
ALERT_ID_HEADER = "Flurfunk-Alert-Id"
DELIVERY_ID_HEADER = "Flurfunk-Delivery-Id"  # the idempotency key: the same on every retry of one message


class DeliveryError(RuntimeError):
    """A message did not reach its target; the text says why (without secrets)."""


class Channel(Protocol):
    name: str

    async def send(self, message: OutboxMessage) -> None: ...


def webhook_signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>`: what a receiver recomputes to verify."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_webhook(secret: bytes, headers: dict[str, str], body: bytes, now_s: float, tolerance_s: float = 300) -> bool:
    """A receiver's check (also the reference for other languages): signature matches, timestamp is recent."""
    timestamp = headers.get(TIMESTAMP_HEADER.lower()) or headers.get(TIMESTAMP_HEADER) or ""
    signature = headers.get(SIGNATURE_HEADER.lower()) or headers.get(SIGNATURE_HEADER) or ""
    if not timestamp.isdigit() or abs(now_s - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(webhook_signature(secret, timestamp, body), signature)


@dataclass
class MqttChannel:
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0
    name: str = "mqtt"

    async def send(self, message: OutboxMessage) -> None:
        import aiomqtt

        try:
            async with asyncio.timeout(self.timeout_s):
                # A client per delivery: aiomqtt does not reconnect by itself, and alerts are few.
                async with aiomqtt.Client(
                    self.host, self.port, username=self.username, password=self.password, timeout=self.timeout_s
                ) as client:
                    # QoS 1: publish returns once the broker acknowledged (PUBACK).
                    await client.publish(message.target, message.body.encode(), qos=1)
        except (aiomqtt.MqttError, OSError, TimeoutError) as error:
            raise DeliveryError(
                f"MQTT {self.host}:{self.port} {message.target}: {error or type(error).__name__}"
            ) from error


@dataclass
class WebhookChannel:
    """POST the JSON body, signed; 2xx is delivered, anything else is retried."""

    secret_for: Callable[[OutboxMessage], bytes]
    clock_s: Callable[[], float]
    timeout_s: float = 10.0
    name: str = "webhook"

    async def send(self, message: OutboxMessage) -> None:
        body = message.body.encode()
        timestamp = str(int(self.clock_s()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: webhook_signature(self.secret_for(message), timestamp, body),
            ALERT_ID_HEADER: message.alert_id,
            DELIVERY_ID_HEADER: message.id,
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(message.target, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryError(f"webhook {message.target}: {type(error).__name__}: {error}") from error
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"webhook {message.target}: HTTP {response.status_code}")


@dataclass
class EmailChannel:
    host: str
    port: int = 25
    sender: str = "flurfunk@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_s: float = 10.0
    name: str = "email"

    def _send_blocking(self, message: OutboxMessage) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.target
        mail["Subject"] = message.subject
        # Stable per delivery: a retry after a lost answer carries the same Message-ID, which mail systems dedupe.
        mail["Message-ID"] = f"<{message.id}@flurfunk.alerts>"
        mail["Date"] = format_datetime(message.created_at)
        mail[ALERT_ID_HEADER] = message.alert_id
        mail[DELIVERY_ID_HEADER] = message.id
        mail.set_content(json.loads(message.body).get("text", message.subject))
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username and self.password:
                smtp.login(self.username, self.password)
            smtp.send_message(mail)

    async def send(self, message: OutboxMessage) -> None:
        try:
            await asyncio.to_thread(self._send_blocking, message)
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"SMTP {self.host}:{self.port} to {message.target}: {error}") from error
