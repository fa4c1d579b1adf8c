package cardsuite.isoapplet;

/**
 * The ISO applet's own commands, PIN and personalised tree (documented in README.md). The file
 * commands themselves are the ISO command processor's (cardsuite.isocmd.ISOCMD).
 */
public interface IsoConstants {
    byte INS_VERIFY = (byte) 0x20;
    byte INS_CHANGE_REFERENCE_DATA = (byte) 0x24;

    /** P2 of VERIFY / CHANGE REFERENCE DATA, and the access-condition reference of the PIN. */
    byte PIN_REF = (byte) 0x01;
    /** VERIFY P1 that resets the verification status (ISO 7816-4:2013). */
    byte VERIFY_P1_RESET = (byte) 0xFF;
    /** CHANGE REFERENCE DATA P1: the data holds only the new PIN (the PIN must be verified). */
    byte CHANGE_P1_NEW_ONLY = (byte) 0x01;
    short SW_REFERENCE_NOT_FOUND = (short) 0x6A88;
    /** VERIFY: wrong PIN, x tries left in the low nibble (ISO 7816-4 7.5.6; 63C0 on the try that blocks). */
    short SW_TRIES_LEFT_BASE = (short) 0x63C0;
    /** VERIFY once no try is left: authentication method blocked (ISO 7816-4 table 6). */
    short SW_PIN_BLOCKED = (short) 0x6983;
    byte PIN_TRIES = 3;
    byte PIN_MIN = 4;
    byte PIN_MAX = 8;

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

    /** getShareableInterfaceObject parameter for the shared DF. */
    byte SHARED_FILES = 0;
}
