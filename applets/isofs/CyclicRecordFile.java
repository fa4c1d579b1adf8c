package cardsuite.isofs;

import javacard.framework.Util;

/**
 * A cyclic EF: a ring of fixed-size records. Record 1 is always the newest; appending to a full file
 * overwrites the oldest record, which ends the ring.
 */
public class CyclicRecordFile extends RecordFile {
    /** Slot (0..capacity-1) holding record 1. */
    byte head;

    /** A cyclic EF of records × recordSize bytes (recordSize 1..255, records 1..254). */
    public CyclicRecordFile(short fid, byte sfi, short recordSize, byte records) {
        super(fid, sfi, ISOFS.FDB_CYCLIC, recordSize, records, (short) (recordSize * records));
        head = (byte) (records - 1);
    }

    /**
     * Makes src the new record 1 (atomically): the others move up by one, and when the file is full
     * the oldest is overwritten. Status 6700 when len is not the record size.
     */
    public void appendRecord(byte[] src, short srcOff, short len) {
        checkLength(len);
        short slot = (short) ((head & 0xFF) + 1);
        if (slot == (short) (maxRecords & 0xFF)) {
            slot = 0;
        }
        boolean own = beginAtomic();
        Util.arrayCopy(src, srcOff, data, (short) (slot * recordSize), len);
        head = (byte) slot;
        if (count != maxRecords) {
            count++;
        }
        endAtomic(own);
    }

    public short offsetOf(short n) {
        short slot = (short) ((head & 0xFF) + 1 - n);
        if (slot < 0) {
            slot += (short) (maxRecords & 0xFF);
        }
        return (short) (slot * recordSize);
    }
}
