"""The class byte (CLA) of a command: the logical channel it addresses and its secure messaging
indication, ISO/IEC 7816-4:2013 5.4.1 and GlobalPlatform's proprietary mirror of it ([GPCS] 11.1.4)."""

from __future__ import annotations


def _class_byte(cla: int) -> int:
    if isinstance(cla, bool) or not isinstance(cla, int) or not 0 <= cla <= 0xFF:
        raise ValueError(f"CLA must be a byte (0..255), got {cla!r}")
    return cla


# Logical channels in the class byte (ISO 7816-4:2013 5.4.1). The first interindustry class (000x xxxx) numbers
# channels 0-3 in b2 b1, secure messaging in b4 b3; the further interindustry class (01xx xxxx) numbers channels
# 4-19 as the channel - 4 in b4..b1, secure messaging in b6; both have command chaining in b5. GlobalPlatform's
# proprietary classes mirror both with b8 set (GPCS 2.3.1 11.1.4: 80-83 and C0-CF, with secure messaging 84-87
# and E0-EF). The one place the host turns a channel into a CLA and back, and reads or sets secure messaging.
LOGICAL_CHANNELS = 20  # 0, the basic channel, to 19
_FURTHER_CLASS = 0x40  # b7: the further interindustry class, channels 4-19
_FIRST_FURTHER_CHANNEL = 4
_PROPRIETARY = 0x80  # b8
_INVALID_CLA = 0xFF


def cla_channel(cla: int) -> int:
    """The logical channel (0-19) a class byte addresses, interindustry or proprietary; CLA FF addresses none."""
    if _class_byte(cla) == _INVALID_CLA:
        raise ValueError("CLA FF is invalid (ISO 7816-4 5.4.1): it addresses no logical channel")
    if cla & _FURTHER_CLASS:
        return _FIRST_FURTHER_CHANNEL + (cla & 0x0F)
    return cla & 0x03


def channel_cla(channel: int, proprietary: bool = False) -> int:
    """The class byte of a command on logical channel ``channel`` (0-19), without secure messaging or chaining:
    the interindustry 00-03 and 40-4F, or with ``proprietary`` GlobalPlatform's 80-83 and C0-CF."""
    if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < LOGICAL_CHANNELS:
        raise ValueError(f"a logical channel is 0..{LOGICAL_CHANNELS - 1}, got {channel!r}")
    if channel < _FIRST_FURTHER_CHANNEL:
        cla = channel
    else:
        cla = _FURTHER_CLASS | (channel - _FIRST_FURTHER_CHANNEL)
    return cla | _PROPRIETARY if proprietary else cla


_SM_FIRST = 0x0C  # b4 b3, first interindustry class: any of ISO's secure messaging formats (not 00)
_SM_GP_FIRST = 0x04  # b3: what GlobalPlatform sets on 80-83 (84-87) and 00-03 under a secure channel
_SM_FURTHER = 0x20  # b6, further interindustry class: secure messaging, GP's C0-CF too (E0-EF)


def is_secure_messaging(cla: int) -> bool:
    """The CLA indicates secure messaging: b4 b3 in the first interindustry class and its proprietary mirror,
    b6 in the further ones (channels 4-19)."""
    if cla & _FURTHER_CLASS:
        return cla & _SM_FURTHER != 0
    return cla & _SM_FIRST != 0


def secure_messaging_cla(cla: int) -> int:
    """The class byte with GlobalPlatform's secure messaging indication set (a secure channel's wrapped
    command, [GPCS] 11.1.4): 80 -> 84 on channels 0-3, C0 -> E0 on channels 4-19."""
    return cla | (_SM_FURTHER if _class_byte(cla) & _FURTHER_CLASS else _SM_GP_FIRST)
