package cardsuite.simtest;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.TransactionException;
import javacard.framework.Util;

/**
 * Bridge test applet for transactions and tearing. Persistent state: a byte array (16), a short array (8), a
 * field of an object, a static field, a boolean array and an object array; transient: a CLEAR_ON_RESET and a
 * CLEAR_ON_DESELECT byte array. P1 is the value to write.
 *
 * INS 10 update everything in one transaction          INS 20 Util.arrayFillNonAtomic(bytes) outside one
 * INS 11 the same with Util.arrayCopy/setShort         INS 21 Util.arrayCopyNonAtomic(data -> bytes)
 * INS 12 update, then abortTransaction                 INS 22 in a transaction: arrayFillNonAtomic(bytes) and
 * INS 13 update, then ISOException 6A80                       shorts, then abort: the bytes stay new
 * INS 14 update, then NullPointerException             INS 30 write the transient arrays only
 * INS 15 update, then return with the transaction open INS 40 read everything (see read())
 * INS 16 update bytes outside any transaction          INS 41 store a new object in the object array, in a
 * INS 17 in a transaction: update everything to P1,           transaction
 *        then again to P1 + 1, then abort
 * INS 18 in a transaction: Util.arrayCopy/setShort (atomic on their own) into bytes, a field, then abort
 *
 * Commit capacity (a persistent array of BULK bytes):
 * INS 60 JCSystem.getMaxCommitCapacity, getUnusedCommitCapacity outside a transaction, inside one before and after
 *        one Util.setShort (2 bytes each, 8 bytes), then abort
 * INS 61 P1P2 = n: in a transaction, bulk[0, n) := P1 ^ P2 ^ 0x5A by Util.arrayCopy in chunks of 255 bytes from
 *        the APDU buffer, then commit; TransactionException.BUFFER_FULL answers 6A84 with the transaction open
 * INS 62 P1P2 = n: bulk[0] and bulk[n - 1]
 */
public class JournalApplet extends Applet {
    private final byte[] bytes = new byte[16];
    private final short[] shorts = new short[8];
    private final boolean[] flags = new boolean[1];
    private final Object[] slots = new Object[1];
    private final Counter counter;
    private final byte[] resetRam;
    private final byte[] deselectRam;
    private static short staticValue;
    private static final short BULK = 8000;
    private static final short CHUNK = 255;
    private final byte[] bulk = new byte[BULK];

    /** An inner (non-static) class: javac stores its outer instance before calling super(). */
    private class Counter {
        short value;
    }

    private JournalApplet() {
        counter = new Counter();
        resetRam = JCSystem.makeTransientByteArray((short) 8, JCSystem.CLEAR_ON_RESET);
        deselectRam = JCSystem.makeTransientByteArray((short) 8, JCSystem.CLEAR_ON_DESELECT);
    }

    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new JournalApplet().register();
    }

    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buffer = apdu.getBuffer();
        byte value = buffer[ISO7816.OFFSET_P1];
        switch (buffer[ISO7816.OFFSET_INS]) {
            case 0x10:
                JCSystem.beginTransaction();
                updateAll(value);
                JCSystem.commitTransaction();
                break;
            case 0x11:
                JCSystem.beginTransaction();
                Util.arrayFillNonAtomic(buffer, (short) 0, (short) 16, value);
                Util.arrayCopy(buffer, (short) 0, bytes, (short) 0, (short) 14);
                Util.setShort(bytes, (short) 14, Util.makeShort(value, value));
                updateShortsAndFields(value);
                JCSystem.commitTransaction();
                break;
            case 0x12:
                JCSystem.beginTransaction();
                updateAll(value);
                JCSystem.abortTransaction();
                break;
            case 0x13:
                JCSystem.beginTransaction();
                updateAll(value);
                ISOException.throwIt(ISO7816.SW_WRONG_DATA);
                break;
            case 0x14:
                JCSystem.beginTransaction();
                updateAll(value);
                short[] missing = null;
                missing[0] = value;
                break;
            case 0x15:
                JCSystem.beginTransaction();
                updateAll(value);
                break;
            case 0x17:
                JCSystem.beginTransaction();
                updateAll(value);
                updateAll((byte) (value + 1)); // the same cells again: an undo must restore the oldest value
                JCSystem.abortTransaction();
                break;
            case 0x18:
                JCSystem.beginTransaction();
                Util.arrayFillNonAtomic(buffer, (short) 0, (short) 16, value);
                Util.arrayCopy(buffer, (short) 0, bytes, (short) 0, (short) 14);
                Util.setShort(bytes, (short) 14, Util.makeShort(value, value));
                counter.value = value;
                JCSystem.abortTransaction();
                break;
            case 0x16:
                for (short i = 0; i < bytes.length; i++) {
                    bytes[i] = value;
                }
                break;
            case 0x20:
                Util.arrayFillNonAtomic(bytes, (short) 0, (short) bytes.length, value);
                break;
            case 0x21:
                apdu.setIncomingAndReceive();
                Util.arrayCopyNonAtomic(buffer, ISO7816.OFFSET_CDATA, bytes, (short) 0, (short) bytes.length);
                break;
            case 0x22:
                JCSystem.beginTransaction();
                Util.arrayFillNonAtomic(bytes, (short) 0, (short) bytes.length, value);
                updateShortsAndFields(value);
                JCSystem.abortTransaction();
                break;
            case 0x30:
                Util.arrayFillNonAtomic(resetRam, (short) 0, (short) resetRam.length, value);
                for (short i = 0; i < deselectRam.length; i++) {
                    deselectRam[i] = value;
                }
                break;
            case 0x40:
                read(apdu);
                break;
            case 0x41:
                JCSystem.beginTransaction();
                slots[0] = new Counter();
                JCSystem.commitTransaction();
                break;
            case 0x60:
                capacity(apdu);
                break;
            case 0x61:
                fillBulk(buffer, Util.getShort(buffer, ISO7816.OFFSET_P1));
                break;
            case 0x62:
                buffer[0] = bulk[0];
                buffer[1] = bulk[(short) (Util.getShort(buffer, ISO7816.OFFSET_P1) - 1)];
                apdu.setOutgoingAndSend((short) 0, (short) 2);
                break;
            default:
                ISOException.throwIt(ISO7816.SW_INS_NOT_SUPPORTED);
        }
    }

    private void capacity(APDU apdu) {
        byte[] buffer = apdu.getBuffer();
        Util.setShort(buffer, (short) 0, JCSystem.getMaxCommitCapacity());
        Util.setShort(buffer, (short) 2, JCSystem.getUnusedCommitCapacity());
        JCSystem.beginTransaction();
        Util.setShort(buffer, (short) 4, JCSystem.getUnusedCommitCapacity());
        Util.setShort(bytes, (short) 0, (short) 0x0102);
        Util.setShort(buffer, (short) 6, JCSystem.getUnusedCommitCapacity());
        JCSystem.abortTransaction();
        apdu.setOutgoingAndSend((short) 0, (short) 8);
    }

    private void fillBulk(byte[] buffer, short length) {
        byte value = (byte) (buffer[ISO7816.OFFSET_P1] ^ buffer[ISO7816.OFFSET_P2] ^ 0x5A);
        Util.arrayFillNonAtomic(buffer, (short) 0, CHUNK, value);
        JCSystem.beginTransaction();
        try {
            for (short done = 0; done < length; done += CHUNK) {
                short n = (short) (length - done) < CHUNK ? (short) (length - done) : CHUNK;
                Util.arrayCopy(buffer, (short) 0, bulk, done, n);
            }
        } catch (TransactionException e) {
            if (e.getReason() == TransactionException.BUFFER_FULL) {
                ISOException.throwIt(ISO7816.SW_FILE_FULL);
            }
            throw e;
        }
        JCSystem.commitTransaction();
    }

    private void updateAll(byte value) {
        for (short i = 0; i < bytes.length; i++) {
            bytes[i] = value;
        }
        updateShortsAndFields(value);
    }

    private void updateShortsAndFields(byte value) {
        for (short i = 0; i < shorts.length; i++) {
            shorts[i] = Util.makeShort(value, value);
        }
        counter.value = value;
        staticValue = value;
        flags[0] = (value & 1) != 0;
    }

    /** bytes(16) | shorts(16) | counter(2) | static(2) | flag(1) | slot set(1) | resetRam(8) | deselectRam(8) */
    private void read(APDU apdu) {
        byte[] buffer = apdu.getBuffer();
        short offset = Util.arrayCopyNonAtomic(bytes, (short) 0, buffer, (short) 0, (short) bytes.length);
        for (short i = 0; i < shorts.length; i++) {
            offset = Util.setShort(buffer, offset, shorts[i]);
        }
        offset = Util.setShort(buffer, offset, counter.value);
        offset = Util.setShort(buffer, offset, staticValue);
        buffer[offset++] = (byte) (flags[0] ? 1 : 0);
        buffer[offset++] = (byte) (slots[0] != null ? 1 : 0);
        offset = Util.arrayCopyNonAtomic(resetRam, (short) 0, buffer, offset, (short) resetRam.length);
        offset = Util.arrayCopyNonAtomic(deselectRam, (short) 0, buffer, offset, (short) deselectRam.length);
        apdu.setOutgoingAndSend((short) 0, offset);
    }
}
