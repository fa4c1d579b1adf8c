package cardsuite.isofs;

/**
 * Constants of the file classes (the paper's ISOFS class): file descriptor bytes, life cycle status
 * bytes, access-condition values and slots, the MF's identifier and the status word of a duplicate
 * file. The ISO command processor's own constants (INS codes, P1-P2 codings, FCP tags, its status
 * words) are in cardsuite.isocmd.ISOCMD. Limits are not here: the applet that builds a tree chooses
 * them.
 */
public interface ISOFS {
    // File descriptor byte (ISO 7816-4 tag 82, first byte).
    byte FDB_TRANSPARENT = (byte) 0x01;
    byte FDB_LINEAR_FIXED = (byte) 0x02;
    byte FDB_LINEAR_VARIABLE = (byte) 0x04;
    byte FDB_CYCLIC = (byte) 0x06;
    byte FDB_DF = (byte) 0x38;

    // Life cycle status byte (ISO 7816-4 tag 8A).
    byte LCS_DELETED = (byte) 0x00; // internal: the file was removed from its tree
    byte LCS_CREATION = (byte) 0x01;
    byte LCS_INITIALISATION = (byte) 0x03;
    byte LCS_DEACTIVATED = (byte) 0x04;
    byte LCS_ACTIVATED = (byte) 0x05;
    byte LCS_TERMINATED = (byte) 0x0C;

    // Access condition values; anything else is a reference the command processor passes to
    // cardsuite.isocmd.SecurityStatus.isSatisfied.
    byte AC_ALWAYS = (byte) 0x00;
    byte AC_NEVER = (byte) 0xFF;

    // Access-condition slots in tag 86 of an FCP (proprietary format, one byte each, in this order).
    byte AC_READ = (byte) 0;
    byte AC_UPDATE = (byte) 1;
    byte AC_APPEND = (byte) 2; // APPEND RECORD on an EF, CREATE FILE in a DF
    byte AC_DELETE = (byte) 3;
    byte AC_ADMIN = (byte) 4; // ACTIVATE / DEACTIVATE / TERMINATE
    byte AC_COUNT = (byte) 5;

    // Reserved file identifier of the MF (the root of a tree).
    short FID_MF = (short) 0x3F00;

    // Status word that javacard.framework.ISO7816 lacks: DedicatedFile.addChild refuses a duplicate.
    short SW_FILE_EXISTS = (short) 0x6A89;
}
