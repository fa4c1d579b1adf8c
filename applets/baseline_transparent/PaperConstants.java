package cardsuite.baseline.transparent;

/** The paper's APDU interface (its Table 3) and file sizes; behaviour in the applet's class comment. */
public interface PaperConstants {
    byte INS_WRITE = (byte) 0x23;
    byte INS_READ = (byte) 0x24;
    byte INS_APPEND = (byte) 0x25;
    short FILE_SIZE = 32;
}
