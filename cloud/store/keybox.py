"""Device keys encrypted at rest: AES-256-GCM with a key from the settings or a key file, bound to device and field.

A ciphertext is `v1:` + base64(nonce ‖ ciphertext+tag); the associated data is `dev_eui:field`, so a key copied
into another device's row or another column does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

logger = logging.getLogger("cloud.keybox")

_VERSION = "v1:"
_NONCE_BYTES = 12


class KeyBoxError(ValueError):
    """A master key that is unusable, or a stored device key that does not decrypt (wrong master key, tampering)."""


class KeyBox:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise KeyBoxError(f"the device-key master key must be 32 bytes, got {len(master_key)}")
        self._aead = AESGCM(master_key)

    @classmethod
    def from_base64(cls, text: str) -> KeyBox:
        try:
            return cls(base64.b64decode(text.strip(), validate=True))
        except binascii.Error as error:
            raise KeyBoxError(f"the device-key master key is not base64: {error}") from error

    @classmethod
    def from_file(cls, path: Path, *, create: bool = False) -> KeyBox:
        """The key in `path` (base64 of 32 bytes); with `create`, a new random key is written there first (0600)."""
        if not path.exists() and create:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as key_file:
                key_file.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
            logger.info("created a new device-key master key at %s; back it up with the database", path)
        try:
            return cls.from_base64(path.read_text())
        except OSError as error:
            raise KeyBoxError(f"cannot read the device-key master key file {path}: {error}") from error

    def seal(self, dev_eui: str, field: str, clear: bytes) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, clear, f"{dev_eui}:{field}".encode())
        return _VERSION + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, dev_eui: str, field: str, stored: str) -> bytes:
        if not stored.startswith(_VERSION):
            raise KeyBoxError(f"device {dev_eui}: {field} is not in a known encrypted format")
        try:
            raw = base64.b64decode(stored[len(_VERSION) :], validate=True)
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], f"{dev_eui}:{field}".encode())
        except (binascii.Error, InvalidTag, ValueError) as error:
            raise KeyBoxError(
                f"device {dev_eui}: {field} does not decrypt (another master key, or the row was altered)"
            ) from error
