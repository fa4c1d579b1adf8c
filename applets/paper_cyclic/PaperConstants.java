package cardsuite.paper.cyclic;

/** The paper's APDU interface (its Table 3) and file sizes; behaviour in the applet's class comment. */
public interface PaperConstants {
    byte INS_WRITE = (byte) 0x23;
    byte INS_READ = (byte) 0x24;
    byte INS_APPEND = (byte) 0x25;
    short FID = (short) 0x3F01;
    short RECORD_SIZE = 32;
    byte RECORDS = 5;
}
