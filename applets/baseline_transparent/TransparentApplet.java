package cardsuite.baseline.transparent;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * The paper's transparent-file example applet written without the file-system library (its own
 * 32-byte array), for the code-size comparison: INS 23 write and 24 read at offset 0.
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
public final class TransparentApplet extends Applet implements PaperConstants {
    private final byte[] data;

    private TransparentApplet() {
        data = new byte[FILE_SIZE];
        register();
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new TransparentApplet();
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
        if (ins != INS_WRITE && ins != INS_READ) {
            ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
        if (Util.getShort(buf, ISO7816.OFFSET_P1) != 0) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        switch (ins) {
            case INS_WRITE:
                write(apdu, buf);
                return;
            default:
                read(apdu);
        }
    }

    private void write(APDU apdu, byte[] buf) {
        if (apdu.setIncomingAndReceive() != FILE_SIZE) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        JCSystem.beginTransaction();
        Util.arrayCopy(buf, ISO7816.OFFSET_CDATA, data, (short) 0, FILE_SIZE);
        JCSystem.commitTransaction();
    }

    private void read(APDU apdu) {
        if (apdu.setOutgoing() != FILE_SIZE) {
            ISOException.throwIt((short) (ISO7816.SW_CORRECT_LENGTH_00 | FILE_SIZE));
        }
        apdu.setOutgoingLength(FILE_SIZE);
        apdu.sendBytesLong(data, (short) 0, FILE_SIZE);
    }
}
