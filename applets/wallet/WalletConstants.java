package cardsuite.wallet;

/**
 * The wallet's APDU interface, life cycle, data layouts and limits in one place. docs/wallet-apdu.md
 * is the reference; every layout below is spelled out there byte by byte.
 */
public interface WalletConstants {
    // ---- classes
    byte CLA_ISO = (byte) 0x00;
    byte CLA_PROPRIETARY = (byte) 0x80;
    /** Proprietary class with secure messaging: C-MAC and an encrypted data field (IssuerChannel). */
    byte CLA_SECURE = (byte) 0x84;

    // ---- instructions: ISO 7816-4 (CLA 00)
    byte INS_VERIFY = (byte) 0x20;
    byte INS_CHANGE_REFERENCE_DATA = (byte) 0x24;
    byte INS_RESET_RETRY_COUNTER = (byte) 0x2C;
    byte INS_READ_RECORD = (byte) 0xB2;
    // ---- proprietary, plain (CLA 80)
    byte INS_GET_PUBLIC_KEY = (byte) 0x48;
    byte INS_INITIALIZE_UPDATE = (byte) 0x50;
    byte INS_PAY = (byte) 0x54;
    byte INS_GET_BALANCE = (byte) 0x5C;
    byte INS_EXTERNAL_AUTHENTICATE = (byte) 0x82;
    byte INS_GET_STATUS = (byte) 0xF2;
    // ---- issuer commands, secure messaging only (CLA 84)
    byte INS_PERSONALISE = (byte) 0x30;
    byte INS_SET_LIMITS = (byte) 0x34;
    byte INS_CREDIT = (byte) 0x52;
    byte INS_SET_STATUS = (byte) 0xF0;

    // ---- life cycle: one bit each, so a command's allowed states are a mask (WalletApplet.POLICY)
    byte STATE_INSTALLED = (byte) 0x01;
    byte STATE_PERSONALISED = (byte) 0x02;
    byte STATE_ACTIVE = (byte) 0x04;
    byte STATE_BLOCKED = (byte) 0x08;
    byte STATE_TERMINATED = (byte) 0x10;
    byte STATES_HOLDER = (byte) (STATE_PERSONALISED | STATE_ACTIVE);
    byte STATES_LIVE = (byte) (STATE_INSTALLED | STATE_PERSONALISED | STATE_ACTIVE | STATE_BLOCKED);
    byte STATES_ALL = (byte) (STATES_LIVE | STATE_TERMINATED);

    // ---- PIN / PUK ([P002]): references in P2, try limits, 8-byte blocks
    byte PIN_REFERENCE = (byte) 0x81;
    byte PIN_TRIES = (byte) 3;
    byte PUK_TRIES = (byte) 10;
    /** PIN block: 4..8 ASCII digits, then FF up to 8 bytes. The PUK is 8 ASCII digits. */
    short PIN_BLOCK = (short) 8;
    byte PIN_MIN_DIGITS = (byte) 4;
    byte RRC_P1_NEW_PIN = (byte) 0x00; // data: PUK block ‖ new PIN block
    byte RRC_P1_RESET_ONLY = (byte) 0x01; // data: PUK block

    // ---- sizes
    short AMOUNT = (short) 4;
    short COUNTER = (short) 4;
    short IIN = (short) 4; // BCD, 6 or 8 digits, F-padded
    short HASH = (short) 32; // H(R-Card), SHA-256
    short HOLDER_MAX = (short) 32;
    short ITEM_MAX = (short) 32;
    short TIMESTAMP = (short) 8; // TS_M, opaque to the card
    short MERCHANT_ID = (short) 8;
    short DES_KEY = (short) 16; // two-key triple DES
    short EC_POINT = (short) 65; // uncompressed P-256 point 04 ‖ X ‖ Y

    // ---- PERSONALISE plaintext (offsets)
    short PERSO_IIN = (short) 0;
    short PERSO_HRCARD = (short) 4;
    short PERSO_LIMITS = (short) 36; // max balance ‖ max per payment ‖ step-up threshold
    short PERSO_PIN = (short) 48;
    short PERSO_PUK = (short) 56;
    short PERSO_KEY_ENC = (short) 64;
    short PERSO_KEY_MAC = (short) 80;
    short PERSO_HOLDER_LEN = (short) 96;
    short PERSO_HOLDER = (short) 97;

    // ---- limits array (12 bytes)
    short LIMIT_MAX_BALANCE = (short) 0;
    short LIMIT_MAX_PAYMENT = (short) 4;
    short LIMIT_STEP_UP = (short) 8;
    short LIMITS = (short) 12;

    // ---- PAY command data: amount ‖ TS_M ‖ merchant ID ‖ Li ‖ item info
    short PAY_AMOUNT = (short) 0;
    short PAY_TS = (short) 4;
    short PAY_MERCHANT = (short) 12;
    short PAY_ITEM_LEN = (short) 20;
    short PAY_ITEM = (short) 21;

    // ---- CREDIT plaintext: amount ‖ timestamp ‖ reference (logged as TS_M and merchant ID)
    short CREDIT_DATA = (short) 20;

    // ---- transaction log: a cyclic EF of the isofs library, read with READ RECORD
    // READ RECORD P2 (ISO 7816-4 7.3.2, table 49): b8-b4 the SFI (0: the current EF), b3-b1 the mode.
    byte RECORD_P2_SFI_SHIFT = (byte) 3;
    byte SFI_MASK = (byte) 0x1F;
    byte RECORD_P2_MODE = (byte) 0x07;
    byte RECORD_NUMBER = (byte) 0x04; // the record numbered P1
    short LOG_FID = (short) 0xEF01;
    byte LOG_SFI = (byte) 1;
    byte LOG_RECORDS = (byte) 10;
    short LOG_COUNTER = (short) 0;
    short LOG_TYPE = (short) 4;
    short LOG_AMOUNT = (short) 5;
    short LOG_BALANCE = (short) 9;
    short LOG_TS = (short) 13;
    short LOG_MERCHANT = (short) 21;
    short LOG_RECORD = (short) 29;
    byte LOG_TYPE_PAYMENT = (byte) 0x01;
    byte LOG_TYPE_CREDIT = (byte) 0x02;

    // ---- key versions (INITIALIZE UPDATE P1 and response byte 0)
    byte KEY_VERSION_TRANSPORT = (byte) 0xFF;
    byte KEY_VERSION_ISSUER = (byte) 0x01;

    // ---- GET STATUS response: state ‖ key version ‖ PIN tries ‖ PUK tries ‖ transaction counter
    short STATUS_LENGTH = (short) 8;

    // ---- status words javacard.framework.ISO7816 lacks
    short SW_AUTHENTICATION_FAILED = (short) 0x6300;
    short SW_TRIES_LEFT_BASE = (short) 0x63C0;
    short SW_AUTH_BLOCKED = (short) 0x6983;
    short SW_SM_MISSING = (short) 0x6987;
    short SW_SM_INCORRECT = (short) 0x6988;
    short SW_REFERENCE_NOT_FOUND = (short) 0x6A88;
}
