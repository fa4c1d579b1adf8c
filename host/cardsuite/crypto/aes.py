"""AES as GlobalPlatform SCP03 uses it ([AmD] Amendment D): ECB/CBC, AES-CMAC (NIST SP 800-38B, RFC 4493)
and the SCP03 key derivation (NIST SP 800-108 in counter mode)."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC


def aes_ecb(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def aes_cbc(key: bytes, data: bytes, iv: bytes, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


def aes_cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def scp03_kdf(key: bytes, constant: int, length_bits: int, context: bytes) -> bytes:
    """[AmD] 6.2.2: NIST SP 800-108 KDF in counter mode with AES-CMAC as PRF. The fixed input data is the
    label (11 zero bytes and the derivation constant), a 00 separator, L on two bytes, the counter i on one
    byte, then the context."""
    out = b""
    counter = 1
    while len(out) * 8 < length_bits:
        data = bytes(11) + bytes([constant, 0]) + length_bits.to_bytes(2, "big") + bytes([counter]) + context
        out += aes_cmac(key, data)
        counter += 1
    return out[: length_bits // 8]
