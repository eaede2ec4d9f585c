"""LoRaWAN 1.0.x frame crypto: the MIC (AES-CMAC over B0 | msg) and FRMPayload en/decryption (AES-128 A_i blocks).

Pure functions over bytes; keys are 16-byte AES-128 keys. Encryption and decryption are the same XOR keystream.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

UPLINK = 0
DOWNLINK = 1
KEY_BYTES = 16
MIC_BYTES = 4
_BLOCK = 16


def _check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise ValueError(f"an AES-128 key has {KEY_BYTES} bytes, got {len(key)}")


@lru_cache(maxsize=8192)
def _aes(key: bytes) -> algorithms.AES:
    # Building the AES object checks the key each time: a quarter of the cost of a MIC on a small frame. The keys
    # are the sessions' own, already held in memory; the cache holds the same bytes, never anything derived.
    return algorithms.AES(key)


@lru_cache(maxsize=8192)
def _ecb(key: bytes) -> Cipher[modes.ECB]:
    return Cipher(_aes(key), modes.ECB())


def _device_block(first: int, direction: int, dev_addr: int, f_cnt: int, last: int) -> bytes:
    """The 16-byte block both B0 and A_i share: tag, 4 zero bytes, Dir, DevAddr (LE), FCnt (LE, 32 bit), 0, last."""
    return (
        bytes((first, 0, 0, 0, 0, direction))
        + dev_addr.to_bytes(4, "little")
        + (f_cnt & 0xFFFFFFFF).to_bytes(4, "little")
        + bytes((0, last))
    )


def compute_mic(nwk_s_key: bytes, direction: int, dev_addr: int, f_cnt: int, message: bytes) -> bytes:
    """The 4-byte MIC of a data frame: AES-CMAC(NwkSKey, B0 | MHDR..FRMPayload) truncated to 4 bytes."""
    _check_key(nwk_s_key)
    if len(message) > 255:
        raise ValueError(f"a LoRaWAN message has at most 255 bytes, got {len(message)}")
    mac = CMAC(_aes(nwk_s_key))
    mac.update(_device_block(0x49, direction, dev_addr, f_cnt, len(message)) + message)
    return mac.finalize()[:MIC_BYTES]


def crypt_frm_payload(key: bytes, direction: int, dev_addr: int, f_cnt: int, payload: bytes) -> bytes:
    """FRMPayload XOR the A_i keystream: encrypts plaintext and decrypts ciphertext alike.

    The key is the AppSKey for FPort 1..255 and the NwkSKey for FPort 0 (MAC commands).
    """
    _check_key(key)
    if not payload:
        return b""
    if len(payload) > 255:
        raise ValueError(f"an FRMPayload has at most 255 bytes, got {len(payload)}")
    blocks = (len(payload) + _BLOCK - 1) // _BLOCK
    counter_blocks = b"".join(_device_block(0x01, direction, dev_addr, f_cnt, i) for i in range(1, blocks + 1))
    encryptor = _ecb(key).encryptor()  # ECB over the A_i blocks is the spec's CTR
    keystream = encryptor.update(counter_blocks) + encryptor.finalize()
    return (int.from_bytes(payload, "big") ^ int.from_bytes(keystream[: len(payload)], "big")).to_bytes(
        len(payload), "big"
    )
