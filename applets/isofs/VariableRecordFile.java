package cardsuite.isofs;

import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * A linear variable EF: records of 1..maxRecordSize bytes packed one after another in the file's
 * byte budget, each preceded by one length byte. The number of records is limited only by the
 * budget (and by 254, the largest record number).
 */
public class VariableRecordFile extends RecordFile {
    /** Bytes of data in use (length bytes included). */
    short used;

    /** A linear variable EF of size bytes whose records hold 1..maxRecordSize (at most 255) bytes. */
    public VariableRecordFile(short fid, byte sfi, short maxRecordSize, short size) {
        super(fid, sfi, ISOFS.FDB_LINEAR_VARIABLE, maxRecordSize, (byte) 0xFE, size);
    }

    /** Bytes of the budget still free (a new record needs its length plus one). */
    public short getFreeSpace() {
        return (short) (data.length - used);
    }

    /**
     * Adds a record after the last one (atomically). Status 6700 when len is 0 or above the largest
     * record size, then 6A84 when the budget (or record number 254) is exhausted.
     */
    public void appendRecord(byte[] src, short srcOff, short len) {
        checkLength(len);
        if (count == maxRecords || len >= getFreeSpace()) {
            ISOException.throwIt(ISO7816.SW_FILE_FULL);
        }
        boolean own = beginAtomic();
        data[used] = (byte) len;
        Util.arrayCopy(src, srcOff, data, (short) (used + 1), len);
        used += (short) (len + 1);
        count++;
        endAtomic(own);
    }

    /**
     * Replaces record recNo with a record of len bytes, moving the records after it when the length
     * changes; all in one transaction, so a tear leaves the old file. Status 6A83 when the record
     * does not exist, 6700 when len is 0 or above the largest record size, 6A84 when the budget (or
     * the card's commit buffer, for the records moved) is too small.
     */
    public void updateRecord(byte recNo, byte[] src, short srcOff, short len) {
        short n = check(recNo);
        checkLength(len);
        short off = offsetOf(n);
        short old = (short) (data[(short) (off - 1)] & 0xFF);
        short tail = (short) (used - off - old);
        short delta = (short) (len - old);
        if (delta > getFreeSpace()) {
            ISOException.throwIt(ISO7816.SW_FILE_FULL);
        }
        if (delta != 0 && JCSystem.getTransactionDepth() == 0
                && (short) (tail + len + 64) > JCSystem.getUnusedCommitCapacity()) {
            ISOException.throwIt(ISO7816.SW_FILE_FULL);
        }
        boolean own = beginAtomic();
        if (delta != 0) {
            Util.arrayCopy(data, (short) (off + old), data, (short) (off + len), tail);
            data[(short) (off - 1)] = (byte) len;
            used += delta;
        }
        Util.arrayCopy(src, srcOff, data, off, len);
        endAtomic(own);
    }

    void checkLength(short len) {
        if (len <= 0 || len > recordSize) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
    }

    public short offsetOf(short n) {
        short off = 1;
        while (--n > 0) {
            off += (short) ((data[(short) (off - 1)] & 0xFF) + 1);
        }
        return off;
    }

    public short lengthOf(short n) {
        return (short) (data[(short) (offsetOf(n) - 1)] & 0xFF);
    }
}
