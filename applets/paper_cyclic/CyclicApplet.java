package cardsuite.paper.cyclic;

import cardsuite.isofs.CyclicRecordFile;
import cardsuite.isofs.ISOFile;
import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;

/**
 * The paper's cyclic-file example applet, built on the file-system library: one cyclic EF of 5 records of 32 bytes;
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
public final class CyclicApplet extends Applet implements PaperConstants {
    private final CyclicRecordFile file;

    private CyclicApplet() {
        file = new CyclicRecordFile(FID, (byte) 0, RECORD_SIZE, RECORDS);
        register();
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new CyclicApplet();
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buf = apdu.getBuffer();
        if (buf[ISO7816.OFFSET_CLA] != 0) {
            ISOException.throwIt(ISO7816.SW_CLA_NOT_SUPPORTED);
        }
        byte ins = buf[ISO7816.OFFSET_INS];
        if (ins < INS_WRITE || ins > INS_APPEND) {
            ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
        if (buf[ISO7816.OFFSET_P2] != 0) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        switch (ins) {
            case INS_WRITE:
                write(apdu, buf);
                return;
            case INS_READ:
                read(apdu, buf);
                return;
            default:
                append(apdu, buf);
        }
    }

    private void write(APDU apdu, byte[] buf) {
        file.updateRecord(buf[ISO7816.OFFSET_P1], buf, ISO7816.OFFSET_CDATA, apdu.setIncomingAndReceive());
    }

    private void read(APDU apdu, byte[] buf) {
        ISOFile.sendExact(apdu, file.readRecord(buf[ISO7816.OFFSET_P1], buf, (short) 0));
    }

    private void append(APDU apdu, byte[] buf) {
        file.appendRecord(buf, ISO7816.OFFSET_CDATA, apdu.setIncomingAndReceive());
    }
}
