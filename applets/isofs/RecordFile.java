package cardsuite.isofs;

import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.Util;

/**
 * A linear fixed EF: up to a fixed number of records of one size, numbered 1..n in the order they
 * were appended. A record exists once appended; the file holds its capacity in one array
 * (records × record size bytes) from creation on.
 */
public class RecordFile extends ISOFile {
    /** Record size (linear fixed, cyclic) or largest record size (linear variable). */
    short recordSize;
    /** Capacity in records (linear fixed, cyclic); 254 for linear variable. */
    byte maxRecords;
    /** Records present, 0..maxRecords. */
    byte count;

    /** A linear fixed EF of records × recordSize bytes (recordSize 1..255, records 1..254). */
    public RecordFile(short fid, byte sfi, short recordSize, byte records) {
        this(fid, sfi, ISOFS.FDB_LINEAR_FIXED, recordSize, records, (short) (recordSize * records));
    }

    RecordFile(short fid, byte sfi, byte descriptor, short recordSize, byte records, short size) {
        super(fid, sfi, descriptor, size);
        this.recordSize = recordSize;
        maxRecords = records;
    }

    /** Record size; for a linear variable EF the largest record size allowed. */
    public short getRecordSize() {
        return recordSize;
    }

    /** Number of records present. */
    public byte getRecordCount() {
        return count;
    }

    /**
     * Copies record recNo into dst and returns its length. Status 6A83 when the record does not
     * exist (0, or beyond the records present).
     */
    public short readRecord(byte recNo, byte[] dst, short dstOff) {
        short n = check(recNo);
        short len = lengthOf(n);
        Util.arrayCopyNonAtomic(data, offsetOf(n), dst, dstOff, len);
        return len;
    }

    /**
     * Replaces record recNo (atomically). Status 6A83 when it does not exist, then 6700 when len is
     * not the record size.
     */
    public void updateRecord(byte recNo, byte[] src, short srcOff, short len) {
        short n = check(recNo);
        checkLength(len);
        store(offsetOf(n), src, srcOff, len);
    }

    /**
     * Adds a record after the last one (atomically). Status 6A84 when the file is full, then 6700
     * when len is not the record size.
     */
    public void appendRecord(byte[] src, short srcOff, short len) {
        if (count == maxRecords) {
            ISOException.throwIt(ISO7816.SW_FILE_FULL);
        }
        checkLength(len);
        boolean own = beginAtomic();
        Util.arrayCopy(src, srcOff, data, (short) (count * recordSize), len);
        count++;
        endAtomic(own);
    }

    /** The record number as 1..count; status 6A83 otherwise. */
    public short check(byte recNo) {
        short n = (short) (recNo & 0xFF);
        if (n == 0 || n > (short) (count & 0xFF)) {
            ISOException.throwIt(ISO7816.SW_RECORD_NOT_FOUND);
        }
        return n;
    }

    /** Status 6700 unless len is an acceptable length for a record of this file. */
    void checkLength(short len) {
        if (len != recordSize) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
    }

    /** Offset in data of the first byte of existing record n. */
    public short offsetOf(short n) {
        return (short) ((short) (n - 1) * recordSize);
    }

    /** Length of existing record n. */
    public short lengthOf(short n) {
        return recordSize;
    }
}
