"""Triple DES, ISO/IEC 9797-1 padding method 2 and the DES MACs built on them.

Both the wallet's issuer channel ([P000]) and GlobalPlatform SCP02 ([GPCS] Appendix E) use these: one
definition, so that the two channels cannot drift apart.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, modes

try:  # cryptography >= 43 keeps 3DES in the "decrepit" module; older versions only in algorithms
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - depends on the installed cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES  # type: ignore[no-redef]

from cardsuite.errors import CardsuiteError

BLOCK = 8


class PaddingError(CardsuiteError, ValueError):
    """Decrypted data that does not end in ISO/IEC 9797-1 method 2 padding."""


def tdes_key(key: bytes) -> TripleDES:
    """K K K from 8 bytes (single DES), K1 K2 K1 from 16 (two-key 3DES), or the three-key form from 24."""
    if len(key) == 8:
        return TripleDES(key * 3)
    if len(key) == 16:
        return TripleDES(key + key[:8])
    if len(key) == 24:
        return TripleDES(key)
    raise ValueError(f"a DES key has 8, 16 or 24 bytes, got {len(key)}")


def tdes_ecb(key: bytes, data: bytes) -> bytes:
    encryptor = Cipher(tdes_key(key), modes.ECB()).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def tdes_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(BLOCK)) -> bytes:
    encryptor = Cipher(tdes_key(key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def tdes_cbc_decrypt(key: bytes, data: bytes, iv: bytes = bytes(BLOCK)) -> bytes:
    decryptor = Cipher(tdes_key(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def pad_m2(data: bytes, block: int = BLOCK) -> bytes:
    """ISO/IEC 9797-1 padding method 2: 80, then zeros up to a multiple of the block (always at least one byte)."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % block)


def unpad_m2(data: bytes, block: int = BLOCK) -> bytes:
    """The inverse of pad_m2. Strict: the padding is one 80 and fewer than ``block`` bytes in all, since a
    longer run of zeros cannot come from pad_m2 and would hide tampered data."""
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80") or len(data) - len(stripped) >= block:
        raise PaddingError("bad ISO/IEC 9797-1 method 2 padding")
    return stripped[:-1]


def full_3des_mac(key: bytes, data: bytes, iv: bytes = bytes(BLOCK)) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 1 with 3DES and padding method 2 (the SCP02 cryptograms, [GPCS] E.4.2)."""
    return tdes_cbc_encrypt(key, pad_m2(data), iv)[-BLOCK:]


def retail_mac(key: bytes, data: bytes, iv: bytes = bytes(BLOCK)) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 with padding method 2 (the SCP02 C-MAC, [GPCS] E.4.4, and the wallet's
    issuer channel): single DES-CBC under K1 over every block but the last, the last under 3DES K1 K2 K1."""
    if len(key) != 16:
        raise ValueError(f"the retail MAC takes a 16-byte key, got {len(key)}")
    padded = pad_m2(data)
    chain = iv
    if len(padded) > BLOCK:
        chain = tdes_cbc_encrypt(key[:8], padded[:-BLOCK], iv)[-BLOCK:]
    return tdes_cbc_encrypt(key, padded[-BLOCK:], chain)
