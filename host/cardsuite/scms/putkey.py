"""PUT KEY ([GPCS] 11.8, [AmD] 7.2) of token-held keys: the issuer's keys for a card, diversified in the KMS
token, put in place of the keys the card came with. Each new key leaves the token only wrapped under the
card's current DEK (C_WrapKey, AES-CBC with a zero ICV as [AmD] 7.2.3 says; an AES-192 key padded in the
token, Kms.wrap), or on SCP02 under the session DEK (3DES-ECB, [GPCS] E.4.7: only with a token that wraps
with CKM_DES3_ECB, which SoftHSM2 does not); its key check value is computed in the token. The command's
layout and the check of the card's answer are cardsuite.gp.perso's."""

from __future__ import annotations

from collections.abc import Callable

from cardsuite.apdu import CommandAPDU
from cardsuite.gp.client import CLA_GP, INS_PUT_KEY, GlobalPlatform
from cardsuite.gp.perso import (
    FIRST_KEY_ID,
    KCV_LENGTH,
    KEY_TYPE_AES,
    KEY_TYPE_DES,
    MORE_KEYS,
    PutKeyCommand,
    StoredKeys,
    check_stored,
    parse_put_key_response,
)
from cardsuite.scms.kms import Kms, KmsError, TokenCardKeys


def put_token_keys(gp: GlobalPlatform, kms: Kms, new: TokenCardKeys, kvn: int, replace: int, *,
                   before_send: Callable[[], None] | None = None) -> StoredKeys:
    """The card's open channel (with token keys) carries the new key set as version ``kvn`` in place of
    version ``replace``. ``before_send``: the caller's write-ahead, run once the command is built (every key
    wrapped) and before it goes: a refusal of the token leaves nothing to undo."""
    channel = gp.channel
    if channel is None or not channel.authenticated or not isinstance(channel.keys, TokenCardKeys):
        raise KmsError("PUT KEY of token keys needs a secure channel opened with token keys")
    scp02 = channel.scp == 0x02
    blocks, checks = [], []
    for key in (new.enc, new.mac, new.dek):
        if (kms.key_type_of(key) == "3des") != scp02:  # the card's protocol takes keys of its own kind
            raise KmsError(f"PUT KEY over SCP{channel.scp:02X} puts {'two-key 3DES' if scp02 else 'AES'} keys: "
                           f"the keys of {new.label} are {'AES' if scp02 else '3DES'}")
        check = kms.check_value(key)[:KCV_LENGTH]
        if scp02:
            wrapped = kms.wrap_des(channel.s_dek, key, new.label)  # type: ignore[attr-defined]
            blocks.append(bytes((KEY_TYPE_DES, len(wrapped))) + wrapped + bytes((KCV_LENGTH,)) + check)
        else:
            wrapped = kms.wrap(channel.keys.dek, key, new.label)
            length = kms.key_length(key)
            blocks.append(bytes((KEY_TYPE_AES, len(wrapped) + 1, length)) + wrapped + bytes((KCV_LENGTH,)) + check)
        checks.append(check)
    command = PutKeyCommand(replace, FIRST_KEY_ID | MORE_KEYS, bytes((kvn,)) + b"".join(blocks), kvn, tuple(checks))
    if before_send is not None:
        before_send()
    response = gp.send(CommandAPDU(CLA_GP, INS_PUT_KEY, command.p1, command.p2, command.data, le=256),
                       f"PUT KEY (version 0x{kvn:02X} in place of 0x{replace:02X})")
    stored = parse_put_key_response(response.data) if response.data else StoredKeys(kvn, ())
    check_stored(command, stored)
    return StoredKeys(stored.kvn, stored.kcvs or command.kcvs)
