package cardsuite.baseline.cyclic;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * The paper's cyclic-file example applet written without the file-system library (its own array for
 * a cyclic file of 5 records of 32 bytes), for the code-size comparison: INS 23 write record P1, 24 read
 * record P1, 25 append record.
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
    private final byte[] data;
    /** Records present, 0..RECORDS. */
    private byte count;
    /** Slot (0..RECORDS-1) holding record 1, the newest. */
    private byte head;

    private CyclicApplet() {
        data = new byte[(short) (RECORD_SIZE * RECORDS)];
        head = RECORDS - 1;
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
        short off = recordOffset(buf[ISO7816.OFFSET_P1]);
        receiveRecord(apdu);
        JCSystem.beginTransaction();
        Util.arrayCopy(buf, ISO7816.OFFSET_CDATA, data, off, RECORD_SIZE);
        JCSystem.commitTransaction();
    }

    private void read(APDU apdu, byte[] buf) {
        short off = recordOffset(buf[ISO7816.OFFSET_P1]);
        if (apdu.setOutgoing() != RECORD_SIZE) {
            ISOException.throwIt((short) (ISO7816.SW_CORRECT_LENGTH_00 | RECORD_SIZE));
        }
        apdu.setOutgoingLength(RECORD_SIZE);
        apdu.sendBytesLong(data, off, RECORD_SIZE);
    }

    private void append(APDU apdu, byte[] buf) {
        receiveRecord(apdu);
        byte slot = (byte) (head + 1);
        if (slot == RECORDS) {
            slot = 0;
        }
        JCSystem.beginTransaction();
        Util.arrayCopy(buf, ISO7816.OFFSET_CDATA, data, (short) (slot * RECORD_SIZE), RECORD_SIZE);
        head = slot;
        if (count != RECORDS) {
            count++;
        }
        JCSystem.commitTransaction();
    }

    /** Offset of record p1 (1..count, 1 the newest); 6A83 when it does not exist. */
    private short recordOffset(byte p1) {
        if (p1 < 1 || p1 > count) {
            ISOException.throwIt(ISO7816.SW_RECORD_NOT_FOUND);
        }
        short slot = (short) (head + 1 - p1);
        if (slot < 0) {
            slot += RECORDS;
        }
        return (short) (slot * RECORD_SIZE);
    }

    /** Receives the command data; 6700 unless it is exactly one record. */
    private static void receiveRecord(APDU apdu) {
        if (apdu.setIncomingAndReceive() != RECORD_SIZE) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
    }
}
