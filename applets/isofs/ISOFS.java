package cardsuite.isofs;

/**
 * Constants of the file-system library (the paper's ISOFS class): file descriptor bytes, life cycle
 * status bytes, access-condition values, FCP tags and the status words ISO 7816-4 adds to
 * javacard.framework.ISO7816. Limits are not here: the applet that builds a tree chooses them.
 */
public interface ISOFS {
    // File descriptor byte (ISO 7816-4 tag 82, first byte).
    byte FDB_TRANSPARENT = (byte) 0x01;
    byte FDB_LINEAR_FIXED = (byte) 0x02;
    byte FDB_LINEAR_VARIABLE = (byte) 0x04;
    byte FDB_CYCLIC = (byte) 0x06;
    byte FDB_DF = (byte) 0x38;
    /** Data coding byte: WRITE is a logical OR, data unit one byte. */
    byte DCB = (byte) 0x41;

    // Life cycle status byte (ISO 7816-4 tag 8A).
    byte LCS_DELETED = (byte) 0x00; // internal: the file was removed from its tree
    byte LCS_CREATION = (byte) 0x01;
    byte LCS_INITIALISATION = (byte) 0x03;
    byte LCS_DEACTIVATED = (byte) 0x04;
    byte LCS_ACTIVATED = (byte) 0x05;
    byte LCS_TERMINATED = (byte) 0x0C;

    // Access condition values; anything else is a reference passed to SecurityStatus.isSatisfied.
    byte AC_ALWAYS = (byte) 0x00;
    byte AC_NEVER = (byte) 0xFF;

    // Access-condition slots in tag 86 of an FCP (proprietary format, one byte each, in this order).
    byte AC_READ = (byte) 0;
    byte AC_UPDATE = (byte) 1;
    byte AC_APPEND = (byte) 2; // APPEND RECORD on an EF, CREATE FILE in a DF
    byte AC_DELETE = (byte) 3;
    byte AC_ADMIN = (byte) 4; // ACTIVATE / DEACTIVATE / TERMINATE
    byte AC_COUNT = (byte) 5;

    // Reserved file identifiers.
    short FID_MF = (short) 0x3F00;
    short FID_PATH = (short) 0x3FFF;
    short FID_RFU = (short) 0xFFFF;

    // FCP / FCI tags.
    byte TAG_FCP = (byte) 0x62;
    byte TAG_FMD = (byte) 0x64;
    byte TAG_FCI = (byte) 0x6F;
    byte TAG_SIZE = (byte) 0x80;
    byte TAG_DESCRIPTOR = (byte) 0x82;
    byte TAG_FID = (byte) 0x83;
    byte TAG_DF_NAME = (byte) 0x84;
    byte TAG_SECURITY = (byte) 0x86;
    byte TAG_SFI = (byte) 0x88;
    byte TAG_LCS = (byte) 0x8A;
    byte TAG_RECORD = (byte) 0x04; // wraps each record in READ RECORDS

    // Instructions FileSystem.process handles (ISO 7816-4, 7816-9).
    byte INS_DEACTIVATE_FILE = (byte) 0x04;
    byte INS_ERASE_BINARY = (byte) 0x0E;
    byte INS_ACTIVATE_FILE = (byte) 0x44;
    byte INS_SEARCH_RECORD = (byte) 0xA2;
    byte INS_SELECT = (byte) 0xA4;
    byte INS_READ_BINARY = (byte) 0xB0;
    byte INS_READ_RECORD = (byte) 0xB2;
    byte INS_WRITE_BINARY = (byte) 0xD0;
    byte INS_WRITE_RECORD = (byte) 0xD2;
    byte INS_UPDATE_BINARY = (byte) 0xD6;
    byte INS_UPDATE_RECORD = (byte) 0xDC;
    byte INS_CREATE_FILE = (byte) 0xE0;
    byte INS_APPEND_RECORD = (byte) 0xE2;
    byte INS_DELETE_FILE = (byte) 0xE4;
    byte INS_TERMINATE_DF = (byte) 0xE6;
    byte INS_TERMINATE_EF = (byte) 0xE8;

    // Status words that javacard.framework.ISO7816 lacks (6986, 6A83, 6A84 are there).
    short SW_END_REACHED = (short) 0x6282;
    short SW_SELECTED_DEACTIVATED = (short) 0x6283;
    short SW_SELECTED_TERMINATED = (short) 0x6285;
    short SW_COMMAND_INCOMPATIBLE = (short) 0x6981;
    short SW_FILE_EXISTS = (short) 0x6A89;
    short SW_DF_NAME_EXISTS = (short) 0x6A8A;
}
