"""PUT KEY ([GPCS] 11.8, [AmD] 7.2) of token-held keys: the issuer's keys for a card, diversified in the KMS
token, put in place of the keys the card came with. Each new key leaves the token only wrapped under the
card's current DEK (C_WrapKey, AES-CBC with a zero ICV as [AmD] 7.2.3 says); its key check value is computed
in the token. The command's layout and the check of the card's answer are cardsuite.gp.perso's."""

from __future__ import annotations

from cardsuite.apdu import CommandAPDU
from cardsuite.gp.client import CLA_GP, INS_PUT_KEY, GlobalPlatform
from cardsuite.gp.perso import (
    FIRST_KEY_ID,
    KCV_LENGTH,
    KEY_TYPE_AES,
    MORE_KEYS,
    PutKeyCommand,
    StoredKeys,
    check_stored,
    parse_put_key_response,
)
from cardsuite.scms.kms import Kms, KmsError, TokenCardKeys


def put_token_keys(gp: GlobalPlatform, kms: Kms, new: TokenCardKeys, kvn: int, replace: int) -> StoredKeys:
    """The card's open channel (SCP03 with token keys) carries the new key set as version ``kvn`` in place of
    version ``replace``."""
    channel = gp.channel
    if channel is None or not channel.authenticated or not isinstance(channel.keys, TokenCardKeys):
        raise KmsError("PUT KEY of token keys needs a secure channel opened with token keys")
    dek = channel.keys.dek
    blocks, checks = [], []
    for key in (new.enc, new.mac, new.dek):
        length = kms.key_length(key)
        if length % 16:
            raise KmsError(f"AES-{length * 8} keys need random padding before wrapping: rotate to AES-128 or -256")
        wrapped = kms.wrap(dek, key, new.label)
        check = kms.check_value(key)[:KCV_LENGTH]
        blocks.append(bytes((KEY_TYPE_AES, len(wrapped) + 1, length)) + wrapped + bytes((KCV_LENGTH,)) + check)
        checks.append(check)
    command = PutKeyCommand(replace, FIRST_KEY_ID | MORE_KEYS, bytes((kvn,)) + b"".join(blocks), kvn, tuple(checks))
    response = gp.send(CommandAPDU(CLA_GP, INS_PUT_KEY, command.p1, command.p2, command.data, le=256),
                       f"PUT KEY (version 0x{kvn:02X} in place of 0x{replace:02X})")
    stored = parse_put_key_response(response.data) if response.data else StoredKeys(kvn, ())
    check_stored(command, stored)
    return StoredKeys(stored.kvn, stored.kcvs or command.kcvs)
