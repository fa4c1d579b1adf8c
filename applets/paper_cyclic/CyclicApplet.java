package cardsuite.paper.cyclic;

import cardsuite.isofs.FileApplet;
import cardsuite.isofs.ISOFS;

/**
 * The paper's cyclic-file example applet, built on the file-system library (its
 * FileApplet handles the commands, so the applet keeps only its file): one cyclic EF of 5 records of 32 bytes;
 * INS 23 write record P1, 24 read record P1, 25 append record.
 *
 * Behaviour, identical in cardsuite.paper.* (built on cardsuite.isofs) and cardsuite.baseline.*
 * (own file code), checked in this order:
 *   SELECT by this applet's AID                           9000, no data
 *   CLA not 00                                            6E00
 *   INS not 23 write / 24 read (/ 25 append: record files)  6D00
 *   P2 not 00                                             6A86
 *   transparent: P1 not 00                                6A86
 *   record, cyclic, INS 23 / 24: P1 not 1..n, n = records present (0 until the first append)   6A83
 *   INS 25: P1 is not interpreted (the paper's trace sends 01 then 02); linear file holding 5 records   6A84
 *   INS 23 / 25: Lc not 32, or no command data            6700
 *   INS 24: Le not 32 (Le absent, and Le 00 = 256, included)   6C20; command data of 24 is ignored
 *   otherwise                                             9000; 24 returns the 32 bytes
 * Write replaces the whole file or record. A new transparent file holds 32 bytes 00; a new record
 * file holds no records. Linear record file: append adds record n+1. Cyclic file: append adds the
 * new record 1 (the others move up one number); with 5 records present it overwrites the oldest.
 * Every write and append is atomic (one transaction).
 */
public final class CyclicApplet extends FileApplet implements PaperConstants {
    private CyclicApplet() {
        super(FID, ISOFS.FDB_CYCLIC, RECORD_SIZE, RECORDS);
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new CyclicApplet();
    }
}
