package cardsuite.isofs;

import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.Util;

/** A transparent EF: a byte string of fixed size addressed by offset. */
public class TransparentFile extends ISOFile {

    /** A transparent EF of size bytes (1..32767), all 00. sfi is 1..30, or 0 for none. */
    public TransparentFile(short fid, byte sfi, short size) {
        super(fid, sfi, ISOFS.FDB_TRANSPARENT, size);
    }

    /**
     * Copies up to len bytes from offset into dst and returns how many were copied (fewer when the
     * end of the file comes first). Status 6B00 when offset is not inside the file.
     */
    public short readBinary(short offset, byte[] dst, short dstOff, short len) {
        short avail = available(offset);
        if (len > avail) {
            len = avail;
        }
        Util.arrayCopyNonAtomic(data, offset, dst, dstOff, len);
        return len;
    }

    /**
     * Replaces len bytes at offset with src (atomically). Status 6B00 when offset is not inside the
     * file, 6700 when the bytes would pass its end.
     */
    public void updateBinary(short offset, byte[] src, short srcOff, short len) {
        if (len > available(offset)) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        store(offset, src, srcOff, len);
    }

    /** Bytes from offset to the end of the file; status 6B00 when offset is outside it. */
    public short available(short offset) {
        if (offset < 0 || offset >= (short) data.length) {
            ISOException.throwIt(ISO7816.SW_WRONG_P1P2);
        }
        return (short) (data.length - offset);
    }
}
