package cardsuite.isoapplet;

/**
 * The ISO applet's own commands, PIN and personalised tree (documented in README.md). The file
 * commands themselves are the ISO command processor's (cardsuite.isocmd.ISOCMD).
 */
public interface IsoConstants {
    byte INS_VERIFY = (byte) 0x20;
    byte INS_CHANGE_REFERENCE_DATA = (byte) 0x24;
    byte INS_RESET_RETRY_COUNTER = (byte) 0x2C;
    byte INS_GET_CHALLENGE = (byte) 0x84;

    // CLA (ISO 7816-4 5.4.1): b8 set is proprietary; 001x xxxx is RFU; the first interindustry classes
    // 000x xxxx carry chaining in b5, secure messaging in b4-b3 and the channel in b2-b1; the further
    // ones 01xx xxxx secure messaging in b6, chaining in b5 and the channel (minus 4) in b4-b1.
    byte CLA_PROPRIETARY = (byte) 0x80;
    byte CLA_KIND = (byte) 0xE0;
    byte CLA_KIND_RFU = (byte) 0x20;
    byte CLA_FURTHER = (byte) 0x40;
    byte CLA_CHAINING = (byte) 0x10;
    byte CLA_FIRST_SM = (byte) 0x0C;
    byte CLA_FURTHER_SM = (byte) 0x20;

    /** P2 of VERIFY / CHANGE REFERENCE DATA, and the access-condition reference of the PIN. */
    byte PIN_REF = (byte) 0x01;
    /** VERIFY P1 that resets the verification status (ISO 7816-4:2013). */
    byte VERIFY_P1_RESET = (byte) 0xFF;
    /** CHANGE REFERENCE DATA P1 (7.5.7): 00 the data is the current PIN then the new one; 01 only the new one
     * (the PIN must be verified). */
    byte CHANGE_P1_OLD_AND_NEW = (byte) 0x00;
    byte CHANGE_P1_NEW_ONLY = (byte) 0x01;
    /** RESET RETRY COUNTER P1 (7.5.10): 00 the PUK then a new PIN; 01 the PUK only (the PIN is kept). */
    byte RESET_P1_PUK_AND_NEW = (byte) 0x00;
    byte RESET_P1_PUK_ONLY = (byte) 0x01;
    short SW_REFERENCE_NOT_FOUND = (short) 0x6A88;
    /** VERIFY: wrong PIN, x tries left in the low nibble (ISO 7816-4 7.5.6; 63C0 on the try that blocks). */
    short SW_TRIES_LEFT_BASE = (short) 0x63C0;
    /** VERIFY once no try is left: authentication method blocked (ISO 7816-4 table 6). */
    short SW_PIN_BLOCKED = (short) 0x6983;
    byte PIN_TRIES = 3;
    byte PIN_MIN = 4;
    byte PIN_MAX = 8;
    /** The resetting code of RESET RETRY COUNTER: always 8 bytes, so that PUK ‖ new PIN splits without a
     * length byte; 5 tries, then blocked for good. */
    byte PUK_LENGTH = 8;
    byte PUK_TRIES = 5;
    /** Install parameters after the PIN: none, the tree limits (3 bytes), or the limits and the PUK. */
    byte PARAMS_LIMITS = 3;
    byte PARAMS_LIMITS_PUK = 3 + 8;
    /** GET CHALLENGE (7.5.3): P1-P2 00 00, at most 256 bytes (Le 00). */
    short CHALLENGE_MAX = 256;

    // Limits of the tree for CREATE FILE when the install parameters do not give them.
    short DEFAULT_MAX_FILES = 24;
    short DEFAULT_MAX_BYTES = 2048;

    // Personalised tree.
    short FID_DF_APP = (short) 0x5000;
    short FID_EF_BINARY = (short) 0x5001;
    short FID_EF_FIXED = (short) 0x5002;
    short FID_EF_VARIABLE = (short) 0x5003;
    short FID_EF_CYCLIC = (short) 0x5004;
    short FID_EF_SECRET = (short) 0x5005;
    short FID_DF_SHARED = (short) 0x6000;
    short FID_EF_SHARED_BINARY = (short) 0x6001;
    short FID_EF_SHARED_CYCLIC = (short) 0x6002;
    /** EF.DIR (ISO 7816-4 8.2.1.1): the applications, one template 61 (4F AID, 50 label) a record. */
    short FID_EF_DIR = (short) 0x2F00;
    byte SFI_EF_DIR = (byte) 30;
    short EF_DIR_RECORD_MAX = 32;
    short EF_DIR_BUDGET = 96;
    /** EF.ATR / EF.INFO (8.2.1.1): interindustry data objects about the card; here its capabilities. */
    short FID_EF_ATR = (short) 0x2F01;
    byte SFI_EF_ATR = (byte) 29;
    byte TAG_APPLICATION_TEMPLATE = (byte) 0x61;
    byte TAG_APPLICATION_ID = (byte) 0x4F;
    byte TAG_APPLICATION_LABEL = (byte) 0x50;

    /** getShareableInterfaceObject parameter for the shared DF. */
    byte SHARED_FILES = 0;
}
