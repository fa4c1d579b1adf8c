"""DAP (Data Authentication Pattern) verification, the host's half ([GPCS] GP Card Specification 2.3.1).

A security domain with the DAP Verification privilege checks every load associated with it (9.2.1, 9.3.5):
INSTALL [for load] carries the Load File Data Block Hash (11.5.2.3.1, C.2), the LOAD data carries a DAP block
``E2 { 4F <SD AID>, C3 <signature> }`` before the Load File Data Block ``C4`` (Table 11-58), and the signature of
the hash (C.3) is checked with the domain's DAP verification key. The scheme here is RSA Scheme 1 (B.3.1.1): a
1024-bit key, RSASSA-PKCS1-v1_5 with SHA-1 over the hash, which is also what GlobalPlatformPro signs with a
1024-bit key; the hash is SHA-256 (B.5, gp.jar's default). The key version the key goes in, 73, is gp.jar's
convention (the specification leaves the key "implicitly known" to the domain, 9.2.1); the simulated card uses it.

The private key stays on the host in a PEM file; the card gets the public key by PUT KEY (``put_key_data``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cardsuite.errors import ConfigurationError
from cardsuite.tlv import encode_tlv

DAP_KEY_VERSION = 0x73  # a security domain's DAP verification key (gp.jar's --new-keyver for DAP)
DAP_KEY_ID = 0x01
SCHEME1_BITS = 1024  # Appendix B.3.1
TAG_DAP_BLOCK, TAG_SD_AID, TAG_SIGNATURE = 0xE2, 0x4F, 0xC3
KEY_TYPE_RSA_N, KEY_TYPE_RSA_E = 0xA1, 0xA0  # [GPCS] Table 11-16: RSA public key components, in clear


def block_hash(load_file_data_block: bytes) -> bytes:
    """The Load File Data Block Hash INSTALL [for load] carries: SHA-256 of the C4 contents."""
    return hashlib.sha256(load_file_data_block).digest()


def dap_block(domain: bytes, signature: bytes) -> bytes:
    """One DAP block of the Load File (11.6.2.3): the verifying domain's AID and its signature."""
    return encode_tlv(TAG_DAP_BLOCK, encode_tlv(TAG_SD_AID, domain) + encode_tlv(TAG_SIGNATURE, signature))


def _scheme1(key: rsa.RSAPrivateKey | rsa.RSAPublicKey, path: Path) -> None:
    if key.key_size != SCHEME1_BITS:
        raise ConfigurationError(f"{path}: a {key.key_size}-bit RSA key; DAP Scheme 1 ([GPCS] B.3.1) takes "
                                 f"{SCHEME1_BITS}-bit keys")


@dataclass(frozen=True)
class DapSigner:
    """The private DAP key of a security domain (a PEM file, unencrypted), never shown."""

    key: rsa.RSAPrivateKey = field(repr=False)
    source: str

    @classmethod
    def from_pem(cls, path: Path) -> DapSigner:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except OSError as exc:
            raise ConfigurationError(f"cannot read the DAP key {path}: {exc.strerror}") from None
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ConfigurationError(f"{path} is not an unencrypted PEM private key (the DAP signing key)") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError(f"{path}: the DAP key must be an RSA key (Scheme 1)")
        _scheme1(key, path)
        return cls(key, str(path))

    def sign(self, lfdb_hash: bytes) -> bytes:
        """Scheme 1: PKCS#1 v1.5 with SHA-1 over the Load File Data Block Hash."""
        return self.key.sign(lfdb_hash, padding.PKCS1v15(), hashes.SHA1())


def read_public_key(path: Path) -> rsa.RSAPublicKey:
    """The DAP verification key for PUT KEY: a PEM public key, or the public half of a PEM private key."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the DAP key {path}: {exc.strerror}") from None
    try:
        key: object = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ConfigurationError(f"{path} is neither a PEM public key nor an unencrypted PEM private key") \
                from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigurationError(f"{path}: the DAP key must be an RSA key (Scheme 1)")
    _scheme1(key, path)
    return key


def put_key_data(public: rsa.RSAPublicKey, kvn: int = DAP_KEY_VERSION) -> bytes:
    """PUT KEY data of an RSA public key (Table 11-68, basic format): the key version, A1 with the modulus, A0 with
    the exponent (public components in clear, 11.8.2.3.2; BER lengths), and a key check value length of 0."""
    numbers = public.public_numbers()
    modulus = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    exponent = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    return (bytes((kvn,)) + encode_tlv(KEY_TYPE_RSA_N, modulus) + encode_tlv(KEY_TYPE_RSA_E, exponent) + b"\x00")
