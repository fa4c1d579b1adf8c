package cardsuite.isocmd;

import cardsuite.isofs.ISOFS;

/**
 * Constants of the ISO 7816-4 command processor: INS codes, P1-P2 codings, FCP tags and the status
 * words ISO 7816-4 adds to javacard.framework.ISO7816. It extends the file classes' constants
 * (cardsuite.isofs.ISOFS), so the processor reaches both through one name.
 */
public interface ISOCMD extends ISOFS {
    /** Data coding byte: WRITE is a logical OR, data unit one byte. */
    byte DCB = (byte) 0x41;

    // Reserved file identifiers (besides ISOFS.FID_MF).
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

    // SELECT P1 (ISO 7816-4 7.1.1, table 39): how the command data names the file.
    byte SELECT_P1_FID = (byte) 0x00; // MF, DF or EF by file identifier; no data: the MF
    byte SELECT_P1_CHILD_DF = (byte) 0x01;
    byte SELECT_P1_CHILD_EF = (byte) 0x02;
    byte SELECT_P1_PARENT_DF = (byte) 0x03;
    byte SELECT_P1_DF_NAME = (byte) 0x04;
    byte SELECT_P1_PATH_FROM_MF = (byte) 0x08;
    byte SELECT_P1_PATH_FROM_DF = (byte) 0x09;

    // SELECT P2 (table 40): b8-b5 RFU (zero), b4-b3 the response, b2-b1 the occurrence.
    byte SELECT_P2_RFU = (byte) 0xF0;
    byte SELECT_P2_RESPONSE = (byte) 0x0C;
    byte SELECT_RESPONSE_FCI = (byte) 0x00;
    byte SELECT_RESPONSE_FCP = (byte) 0x04;
    byte SELECT_RESPONSE_FMD = (byte) 0x08;
    byte SELECT_RESPONSE_NONE = (byte) 0x0C;
    byte SELECT_P2_OCCURRENCE = (byte) 0x03;
    byte SELECT_OCCURRENCE_FIRST = (byte) 0x00;
    byte SELECT_OCCURRENCE_NEXT = (byte) 0x02;

    // READ / UPDATE BINARY P1 (7.2.2): b8 = 1 names the EF by SFI in b5-b1, b7-b6 then zero.
    byte BINARY_P1_SFI = (byte) 0x80;
    byte BINARY_P1_RFU = (byte) 0x60;

    // Record commands P2 (7.3.2, table 49): b8-b4 the SFI (0: the current EF), b3-b1 the mode.
    byte RECORD_P2_SFI_SHIFT = (byte) 3;
    byte SFI_MASK = (byte) 0x1F;
    byte RECORD_P2_MODE = (byte) 0x07;
    byte RECORD_FIRST = (byte) 0x00; // with P1 = 00
    byte RECORD_LAST = (byte) 0x01;
    byte RECORD_NEXT = (byte) 0x02;
    byte RECORD_PREVIOUS = (byte) 0x03;
    byte RECORD_NUMBER = (byte) 0x04; // record P1 (00: the current record)
    byte RECORDS_FROM_P1 = (byte) 0x05; // READ RECORDS: record P1 up to the last
    byte RECORDS_TO_P1 = (byte) 0x06; // READ RECORDS: the last down to record P1
    byte SEARCH_FORWARD = (byte) 0x04; // SEARCH RECORD (7.3.7): from record P1 onwards
    byte SEARCH_BACKWARD = (byte) 0x05;

    // Status words that javacard.framework.ISO7816 lacks (6986, 6A83, 6A84 are there).
    short SW_END_REACHED = (short) 0x6282;
    short SW_SELECTED_DEACTIVATED = (short) 0x6283;
    short SW_SELECTED_TERMINATED = (short) 0x6285;
    short SW_COMMAND_INCOMPATIBLE = (short) 0x6981;
    short SW_DF_NAME_EXISTS = (short) 0x6A8A;
}
